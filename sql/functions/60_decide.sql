-- functions/60_decide.sql - the daemon's functions: a decision (association,
-- renewal continuity, pending registration), last-use bookkeeping, the
-- count of pending registrations for /metrics and the readiness ping.
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

-- The one rule: is a last-use time older than the write interval? Last use
-- answers "which keys are no longer used", a question of days; written on
-- every login it made each one a write transaction (004_last_use.sql).
-- The interval is the daemon's record_interval, which certregd sets as
-- certreg.record_interval (seconds) in each of its sessions, and by which
-- its cache also spaces the record_use() calls of a key: one setting for
-- both. A session without it (psql) records every use.
CREATE OR REPLACE FUNCTION last_use_due(p_at timestamptz) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT p_at IS NULL
        OR p_at < now() - make_interval(secs => coalesce(
               nullif(current_setting('certreg.record_interval', true), '')::integer, 0))
$$;

-- An associated key as decide() answers it, and which of decide()'s writes
-- it is due: the certificate seen (seen_due: not the certificate of the
-- key's last recorded use, or that use is due), the credit-code rule of a
-- binding made before any verified certificate (credit_due; credit_differs
-- when the certificate's credit code is not its unit's), the last use
-- (use_due). decide() writes them, decide_read() (65_replicas.sql) says
-- whether any is due, key_use_record() writes the first and the last. No
-- row for a key with no association. A LANGUAGE sql function the planner
-- inlines: the callers' plans stay one probe of each primary key of keys,
-- units and offices. The certificate's own row is not read: when it is
-- keys.last_used_cert, certregd recorded it (source 'daemon') at the last
-- use, and that is not due (012_last_used_cert.sql).
CREATE OR REPLACE FUNCTION known_key(p_key_id text, p_cert jsonb)
    RETURNS TABLE (key_status text, registration_no text, unit_name text, unit_status text,
                   office_code text, office_name text, office_address text,
                   office_phone text, seen_due boolean, credit_due boolean,
                   credit_differs boolean, use_due boolean)
    LANGUAGE sql STABLE AS $$
    SELECT k.status, k.registration_no, u.name, u.status, o.code, o.name, o.address, o.phone,
           p_cert IS NOT NULL
               AND (last_use_due(k.last_used_at)
                    OR k.last_used_cert IS DISTINCT FROM p_cert->>'sha256'),
           NOT k.credit_checked AND p_cert->>'credit_code' IS NOT NULL,
           NOT k.credit_checked AND p_cert->>'credit_code' IS NOT NULL
               AND u.credit_code IS NOT NULL AND u.credit_code <> p_cert->>'credit_code',
           last_use_due(k.last_used_at)
      FROM keys k
      JOIN units u ON u.registration_no = k.registration_no
      JOIN offices o ON o.code = u.office_code
     WHERE k.key_id = p_key_id
$$;

-- The writes of a use of an associated key that known_key() found due:
-- the key's last use with the certificate of that use, and the
-- certificate recorded as seen. The one writer of keys.last_used_cert,
-- and it writes it in the transaction of certificate_seen(), which makes
-- the row certregd's (the rule known_key() relies on). The key's row
-- first, then the certificate's, as key_bind() locks them: two
-- transactions that take the same two rows in the other order deadlock.
-- A certificate certregd records for the first time (one the counter bound
-- from a file, or new) makes the key a predecessor for renewal continuity:
-- the pending keys of its holder are notified (15_notify.sql). Once a
-- certificate: a primary-key probe when seen_due, nothing otherwise.
CREATE OR REPLACE FUNCTION key_use_record(p_key_id text, p_cert jsonb, p_seen_due boolean)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_first boolean;
BEGIN
    UPDATE keys SET last_used_at = now(),
                    last_used_cert = CASE WHEN p_seen_due THEN p_cert->>'sha256'
                                          ELSE last_used_cert END
     WHERE key_id = p_key_id;
    IF p_seen_due THEN
        v_first := p_cert->>'holder_id' IS NOT NULL
                   AND NOT EXISTS (SELECT FROM certificates c
                                    WHERE c.sha256 = p_cert->>'sha256'
                                      AND c.source = 'daemon');
        PERFORM certificate_seen(p_key_id, p_cert);
        IF v_first THEN
            PERFORM notify_holder_pending(p_key_id);
        END IF;
    END IF;
END $$;

-- p_cert is what certregd verified (the daemon's login is trusted to report
-- that, and nothing more): renewal continuity needs a predecessor
-- certificate the daemon itself recorded, with the same issuer and holder
-- id, of an approved key of an active unit.
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
    v_seen_due boolean;
    v_credit_due boolean;
    v_credit_differs boolean;
    v_use_due boolean;
    v_cc text := p_cert->>'credit_code';
BEGIN
    PERFORM require_key_id(p_key_id);
    SELECT * INTO key_status, registration_no, unit_name, unit_status, office_code, office_name,
                  office_address, office_phone, v_seen_due, v_credit_due, v_credit_differs,
                  v_use_due
      FROM known_key(p_key_id, p_cert);
    IF FOUND THEN
        -- A binding made before any verified certificate: the credit-code
        -- rule of key_bind(), now with verified facts.
        IF v_credit_differs THEN
            PERFORM certificate_seen(p_key_id, p_cert);
            RETURN QUERY SELECT * FROM decide_pending(p_key_id, p_cert, p_peer);
            RETURN;
        END IF;
        IF v_credit_due THEN
            UPDATE keys SET credit_checked = true WHERE key_id = p_key_id;
        END IF;
        IF v_seen_due OR v_use_due THEN
            PERFORM key_use_record(p_key_id, p_cert, v_seen_due);
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;
    PERFORM certificate_seen(p_key_id, p_cert);
    -- Renewal continuity (contract section 3), on verified facts only.
    IF p_renewal AND p_cert->>'holder_id' IS NOT NULL
       AND (p_cert->>'not_after')::timestamptz > now() THEN
        SELECT count(DISTINCT k.registration_no), min(k.registration_no), min(k.key_id)
          INTO v_units, v_regno, v_pred
          FROM certificates c
          JOIN keys k ON k.key_id = c.key_id
          JOIN units u ON u.registration_no = k.registration_no
         WHERE c.issuer = p_cert->>'issuer' AND c.holder_id = p_cert->>'holder_id'
           AND c.source = 'daemon' AND c.key_id <> p_key_id
           AND c.not_before < (p_cert->>'not_before')::timestamptz
           AND k.status = 'approved' AND u.status = 'active'
           AND (u.credit_code IS NULL OR v_cc IS NULL OR u.credit_code = v_cc)
           -- Not a predecessor whose own certificate fails the credit-code
           -- rule (bound before certregd verified one, refused since; the
           -- successor would skip the check): unless a supervisor forced it.
           AND (k.credit_checked OR u.credit_code IS NULL OR c.credit_code IS NULL
                OR c.credit_code = u.credit_code);
        -- Two units claiming one holder id is for a person to sort out.
        IF v_units = 1 THEN
            INSERT INTO keys (key_id, registration_no, status, how, predecessor, bound_by,
                              credit_checked)
            VALUES (p_key_id, v_regno, 'approved', 'renewal', v_pred, session_user, true)
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
                                                        'certificate', p_cert->>'sha256',
                                                        'issuer', p_cert->>'issuer',
                                                        'holder_id', p_cert->>'holder_id',
                                                        'serial', p_cert->>'serial'));
                PERFORM notify_change(p_key_id);
            END IF;
            SELECT k.status, k.registration_no INTO v_status, v_regno FROM keys k
             WHERE k.key_id = p_key_id;
            -- The key's first use (certificate_seen() again: once a key).
            PERFORM key_use_record(p_key_id, p_cert, true);
            RETURN QUERY
                SELECT v_status, u.registration_no, u.name, u.status, o.code, o.name, o.address,
                       o.phone, v_pred
                  FROM units u JOIN offices o ON o.code = u.office_code
                 WHERE u.registration_no = v_regno;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM decide_pending(p_key_id, p_cert, p_peer);
END $$;

-- The KEY_NOT_APPROVED half of decide(): the pending registration, and the
-- office of the one active unit with the certificate's credit code (where
-- to send the user), if there is exactly one.
CREATE OR REPLACE FUNCTION decide_pending(p_key_id text, p_cert jsonb, p_peer text)
    RETURNS TABLE (key_status text, registration_no text, unit_name text, unit_status text,
                   office_code text, office_name text, office_address text,
                   office_phone text, renewed_from text)
    LANGUAGE plpgsql AS $$
BEGIN
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
    -- pending_answer() is in 65_replicas.sql: decide_read() answers the same.
    RETURN QUERY SELECT * FROM pending_answer(p_cert);
END $$;

CREATE OR REPLACE FUNCTION record_use(p_key_id text, p_cert jsonb, p_peer text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_seen_due boolean;
    v_use_due boolean;
BEGIN
    PERFORM require_key_id(p_key_id);
    SELECT k.seen_due, k.use_due INTO v_seen_due, v_use_due FROM known_key(p_key_id, p_cert) k;
    IF NOT FOUND THEN
        PERFORM certificate_seen(p_key_id, p_cert);
        UPDATE pending SET attempts = attempts + 1, last_seen = now(), last_peer = p_peer
         WHERE key_id = p_key_id;
        RETURN;
    END IF;
    IF v_seen_due OR v_use_due THEN
        PERFORM key_use_record(p_key_id, p_cert, v_seen_due);
    END IF;
END $$;

-- The pending registrations waiting at the counters, for the gauge of
-- /metrics: one daemon worker asks every 10 s, never a request. A scan of
-- a table the size of the counters' backlog (an index-only scan of 100,000
-- rows took some 40 ms, measured by hand on a busy two-core machine).
CREATE OR REPLACE FUNCTION pending_count() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT count(*) FROM pending
$$;

CREATE OR REPLACE FUNCTION ping() RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce(max(version), 0) FROM certreg_meta.migrations
$$;

RESET ROLE;
