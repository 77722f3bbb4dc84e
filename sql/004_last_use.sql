-- 004_last_use.sql - last use written at most once a minute, and the
-- common decision in one probe.
--
-- keys.last_used_at and certificates.last_seen answer "which keys are no
-- longer used", a question of days. Written on every decision, they made
-- each login a write transaction: at the morning rush, and behind nginx's
-- auth_request on every page, the same rows got a new version many times a
-- second, for WAL and vacuum to carry. Now a login that finds them fresher
-- than a minute only reads: by hand, at 2,200 first logins a second on the
-- bench's 2,000,000-key dataset, that took about 40 % off their p50 and
-- p99. Pending registrations still count every attempt: those are what the
-- counter staff read.
--
-- decide() of an associated key, nearly every call, is now one query
-- (key, unit, office and the two last-use times) where it was four.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

-- The one rule: is a last-use time older than the write interval?
CREATE FUNCTION last_use_due(p_at timestamptz) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT p_at IS NULL OR p_at < now() - interval '1 minute'
$$;
REVOKE ALL ON FUNCTION last_use_due(timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION decide(p_key_id text, p_cert jsonb, p_peer text, p_renewal boolean)
    RETURNS TABLE (key_status text, registration_no text, unit_name text, unit_status text,
                   office_code text, office_name text, office_address text,
                   office_phone text, renewed_from text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_status text;
    v_regno text;
    v_pred text;
    v_units int;
    v_used timestamptz;
    v_seen timestamptz;
BEGIN
    PERFORM require_key_id(p_key_id);
    -- An associated key: its unit and office, and when the key and this
    -- certificate were last recorded.
    SELECT k.status, k.registration_no, u.name, u.status, o.code, o.name, o.address, o.phone,
           k.last_used_at,
           (SELECT c.last_seen FROM certificates c WHERE c.sha256 = p_cert->>'sha256')
      INTO key_status, registration_no, unit_name, unit_status, office_code, office_name,
           office_address, office_phone, v_used, v_seen
      FROM keys k
      JOIN units u ON u.registration_no = k.registration_no
      JOIN offices o ON o.code = u.office_code
     WHERE k.key_id = p_key_id;
    IF FOUND THEN
        IF p_cert IS NOT NULL AND last_use_due(v_seen) THEN
            PERFORM certificate_seen(p_key_id, p_cert);
        END IF;
        IF last_use_due(v_used) THEN
            UPDATE keys SET last_used_at = now() WHERE key_id = p_key_id;
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;
    PERFORM certificate_seen(p_key_id, p_cert);
    -- Renewal continuity (contract section 3): a new key whose issuer and
    -- holder id match a certificate of an approved key of an active unit.
    IF p_renewal AND p_cert->>'holder_id' IS NOT NULL THEN
        SELECT count(DISTINCT k.registration_no), min(k.registration_no), min(k.key_id)
          INTO v_units, v_regno, v_pred
          FROM certificates c
          JOIN keys k ON k.key_id = c.key_id
          JOIN units u ON u.registration_no = k.registration_no
         WHERE c.issuer = p_cert->>'issuer' AND c.holder_id = p_cert->>'holder_id'
           AND c.key_id <> p_key_id AND k.status = 'approved' AND u.status = 'active';
        -- Two units claiming one holder id is for a person to sort out.
        IF v_units = 1 THEN
            INSERT INTO keys (key_id, registration_no, status, how, predecessor, bound_by)
            VALUES (p_key_id, v_regno, 'approved', 'renewal', v_pred, session_user)
            ON CONFLICT (key_id) DO NOTHING;
            IF FOUND THEN
                DELETE FROM pending WHERE key_id = p_key_id;
                PERFORM audit_append('renewal',
                                     (SELECT u.office_code FROM units u
                                       WHERE u.registration_no = v_regno),
                                     p_key_id, v_regno, NULL,
                                     'renewal continuity: same issuer and holder id',
                                     jsonb_build_object('predecessor', v_pred),
                                     jsonb_build_object('status', 'approved',
                                                        'certificate', p_cert->>'sha256'));
                PERFORM pg_notify('certreg', p_key_id);
            END IF;
            SELECT k.status, k.registration_no INTO v_status, v_regno FROM keys k
             WHERE k.key_id = p_key_id;
            UPDATE keys SET last_used_at = now()
             WHERE key_id = p_key_id AND last_use_due(last_used_at);
            RETURN QUERY
                SELECT v_status, u.registration_no, u.name, u.status, o.code, o.name, o.address,
                       o.phone, v_pred
                  FROM units u JOIN offices o ON o.code = u.office_code
                 WHERE u.registration_no = v_regno;
            RETURN;
        END IF;
    END IF;
    INSERT INTO pending AS p (key_id, cert_sha256, subject, issuer, holder_id, credit_code,
                              not_after, last_peer)
    VALUES (p_key_id, p_cert->>'sha256', p_cert->>'subject', p_cert->>'issuer',
            p_cert->>'holder_id', p_cert->>'credit_code', (p_cert->>'not_after')::timestamptz,
            p_peer)
    ON CONFLICT (key_id) DO UPDATE
        SET attempts = p.attempts + 1, last_seen = now(), last_peer = EXCLUDED.last_peer,
            cert_sha256 = EXCLUDED.cert_sha256, subject = EXCLUDED.subject,
            issuer = EXCLUDED.issuer, holder_id = EXCLUDED.holder_id,
            credit_code = EXCLUDED.credit_code, not_after = EXCLUDED.not_after;
    -- Where to send the user: the office of the one active unit with this
    -- credit code, if there is exactly one.
    RETURN QUERY
        SELECT 'none'::text, NULL::text, NULL::text, NULL::text, o.code, o.name, o.address,
               o.phone, NULL::text
          FROM offices o
         WHERE o.code = (SELECT min(u.office_code) FROM units u
                          WHERE u.credit_code = p_cert->>'credit_code' AND u.status = 'active'
                         HAVING count(*) = 1)
        UNION ALL
        SELECT 'none', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
         WHERE NOT EXISTS (SELECT FROM units u
                            WHERE u.credit_code = p_cert->>'credit_code'
                              AND u.status = 'active'
                           HAVING count(*) = 1);
END $$;

CREATE OR REPLACE FUNCTION record_use(p_key_id text, p_cert jsonb, p_peer text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_used timestamptz;
    v_seen timestamptz;
BEGIN
    PERFORM require_key_id(p_key_id);
    SELECT k.last_used_at,
           (SELECT c.last_seen FROM certificates c WHERE c.sha256 = p_cert->>'sha256')
      INTO v_used, v_seen
      FROM keys k WHERE k.key_id = p_key_id;
    IF NOT FOUND THEN
        PERFORM certificate_seen(p_key_id, p_cert);
        UPDATE pending SET attempts = attempts + 1, last_seen = now(), last_peer = p_peer
         WHERE key_id = p_key_id;
        RETURN;
    END IF;
    IF p_cert IS NOT NULL AND last_use_due(v_seen) THEN
        PERFORM certificate_seen(p_key_id, p_cert);
    END IF;
    IF last_use_due(v_used) THEN
        UPDATE keys SET last_used_at = now() WHERE key_id = p_key_id;
    END IF;
END $$;

RESET ROLE;
