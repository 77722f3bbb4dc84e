-- 006_verified_facts.sql - certificate facts are trusted only when certregd
-- verified them (issue 27, findings 1, 2 and 7).
--
-- Before: key_bind() took the credit code for its cross-check from the
-- certificate JSON the caller passed, and recorded that JSON as a
-- certificate "seen"; decide() then matched renewal continuity against any
-- certificate row. An operator with psql could therefore (a) skip the
-- credit-code check with made-up JSON and (b) plant an issuer and holder id
-- so that another company's future certificate renewed into the operator's
-- unit. Now:
--   * certificates.source says who reported a row: 'daemon' (certregd
--     parsed and verified the certificate: decide(), record_use()) or
--     'operator' (key bind --cert: shown, never trusted). A daemon report of
--     the same certificate replaces every fact of an operator row.
--   * key_bind() checks the credit code against daemon-verified facts only
--     (certificates and pending registrations, both written by the daemon
--     alone). A key bound before certregd ever verified one of its
--     certificates is bound with credit_checked = false, and the check runs
--     at its first verified login: a mismatch is KEY_NOT_APPROVED (and a
--     pending registration the counter sees), never OK.
--   * renewal continuity matches only predecessor certificates the daemon
--     recorded; the successor must be current, issued after the
--     predecessor, and carry no credit code other than the unit's.
--   * refusals never name a unit or office the caller may not read.
-- Functions are replaced whole; their bodies here are the current rules.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

ALTER TABLE certificates
    ADD COLUMN source text NOT NULL DEFAULT 'daemon' CHECK (source IN ('daemon', 'operator'));
-- From now on a row that does not say who reported it is not trusted.
ALTER TABLE certificates ALTER COLUMN source SET DEFAULT 'operator';
-- Rows that a counter binding brought in cannot be told from verified ones
-- any more: those a bind names are treated as operator-supplied until
-- certregd sees the certificate again (at the next login with it).
UPDATE certificates c SET source = 'operator'
 WHERE EXISTS (SELECT FROM audit a
                WHERE a.action = 'bind' AND a.after->>'certificate' = c.sha256);

-- true: the credit-code rule was applied with verified facts (or forced by a
-- supervisor, or there was nothing to compare); false: at the first login.
-- Existing keys were checked by the rule of their time; new rows say so.
ALTER TABLE keys ADD COLUMN credit_checked boolean NOT NULL DEFAULT true;
ALTER TABLE keys ALTER COLUMN credit_checked SET DEFAULT false;

CREATE OR REPLACE VIEW certificates_v WITH (security_invoker = true) AS
    SELECT sha256, key_id, subject, issuer, serial, holder_id, credit_code, not_before,
           not_after, first_seen, last_seen, source FROM certificates;
CREATE OR REPLACE VIEW keys_v WITH (security_invoker = true) AS
    SELECT k.key_id, k.registration_no, u.name AS unit_name, u.office_code, k.status, k.how,
           k.predecessor, k.ticket, k.bound_at, k.bound_by, k.status_reason, k.updated_at,
           k.last_used_at,
           (SELECT max(c.not_after) FROM certificates c WHERE c.key_id = k.key_id) AS not_after,
           k.credit_checked
      FROM keys k JOIN units u ON u.registration_no = k.registration_no;

-- May the caller read this office's rows (the RLS rule of 001, for messages)?
CREATE FUNCTION reads_office(p_office text) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT reads_all() OR p_office = ANY (my_offices())
$$;

CREATE OR REPLACE FUNCTION require_office(p_office text) RETURNS void
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT (is_supervisor() OR p_office = ANY (my_offices())) THEN
        PERFORM refuse('CR007', format(
            'not permitted: %s may change only units of their own offices (%s)',
            session_user, coalesce(nullif(array_to_string(my_offices(), ', '), ''), 'none')));
    END IF;
END $$;

-- A certificate certregd parsed and verified: the one writer of trusted facts.
CREATE OR REPLACE FUNCTION certificate_seen(p_key_id text, p_cert jsonb) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO certificates AS c (sha256, key_id, subject, issuer, serial, holder_id,
                                   credit_code, not_before, not_after, source)
    SELECT p_cert->>'sha256', p_key_id, p_cert->>'subject', p_cert->>'issuer',
           p_cert->>'serial', p_cert->>'holder_id', p_cert->>'credit_code',
           (p_cert->>'not_before')::timestamptz, (p_cert->>'not_after')::timestamptz, 'daemon'
     WHERE p_cert IS NOT NULL
    ON CONFLICT (sha256) DO UPDATE
        SET last_seen = now(), source = 'daemon',
            key_id = CASE WHEN c.source = 'daemon' THEN c.key_id ELSE EXCLUDED.key_id END,
            subject = CASE WHEN c.source = 'daemon' THEN c.subject ELSE EXCLUDED.subject END,
            issuer = CASE WHEN c.source = 'daemon' THEN c.issuer ELSE EXCLUDED.issuer END,
            serial = CASE WHEN c.source = 'daemon' THEN c.serial ELSE EXCLUDED.serial END,
            holder_id = CASE WHEN c.source = 'daemon' THEN c.holder_id
                             ELSE EXCLUDED.holder_id END,
            credit_code = CASE WHEN c.source = 'daemon' THEN c.credit_code
                               ELSE EXCLUDED.credit_code END,
            not_before = CASE WHEN c.source = 'daemon' THEN c.not_before
                              ELSE EXCLUDED.not_before END,
            not_after = CASE WHEN c.source = 'daemon' THEN c.not_after
                             ELSE EXCLUDED.not_after END;
END $$;

-- The credit code certregd verified for a key: its newest verified
-- certificate's, else its pending registration's (also daemon-written).
CREATE FUNCTION verified_credit_code(p_key_id text) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT c.credit_code FROM certificates c
          WHERE c.key_id = p_key_id AND c.source = 'daemon' AND c.credit_code IS NOT NULL
          ORDER BY c.not_after DESC LIMIT 1),
        (SELECT p.credit_code FROM pending p WHERE p.key_id = p_key_id))
$$;

-- Has certregd verified any certificate over this key?
CREATE FUNCTION key_verified(p_key_id text) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT FROM certificates c WHERE c.key_id = p_key_id AND c.source = 'daemon')
        OR EXISTS (SELECT FROM pending p WHERE p.key_id = p_key_id AND p.cert_sha256 IS NOT NULL)
$$;

-- p_cert (key bind --cert) is the operator's copy of the certificate: its
-- facts are recorded for display (source 'operator') and decide nothing.
CREATE OR REPLACE FUNCTION key_bind(p_key_id text, p_regno text, p_ticket text,
                                    p_force boolean, p_reason text, p_cert jsonb)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    u units;
    k keys;
    v_cert_cc text;
    v_forced boolean := false;
    v_checked boolean;
BEGIN
    PERFORM require_key_id(p_key_id);
    PERFORM require_text(p_ticket, 'ticket');
    IF p_cert IS NOT NULL AND p_cert->>'key_id' IS DISTINCT FROM p_key_id THEN
        PERFORM refuse('CR001', 'the certificate''s key id does not match the key id given');
    END IF;
    SELECT * INTO u FROM units WHERE registration_no = p_regno;
    IF NOT FOUND OR NOT reads_office(u.office_code) THEN
        PERFORM refuse('CR002', format('unit %s does not exist', p_regno));
    END IF;
    PERFORM require_office(u.office_code);
    IF u.status <> 'active' THEN
        PERFORM refuse('CR005', format('unit %s is closed: keys cannot be bound to it', p_regno));
    END IF;
    SELECT * INTO k FROM keys WHERE key_id = p_key_id FOR UPDATE;
    IF FOUND AND k.status <> 'cancelled' THEN
        IF k.registration_no = p_regno THEN
            PERFORM refuse('CR003', format('key %s is already bound to unit %s (%s)',
                                           left(p_key_id, 16), p_regno, k.status));
        END IF;
        IF reads_office((SELECT office_code FROM units WHERE registration_no = k.registration_no))
        THEN
            PERFORM refuse('CR004', format(
                'key %s is bound to another unit (%s); cancel that association first',
                left(p_key_id, 16), k.registration_no));
        END IF;
        PERFORM refuse('CR004', format(
            'key %s is bound to a unit of another office; that office or a supervisor must cancel it first',
            left(p_key_id, 16)));
    END IF;
    -- The credit code the CA asserts, as certregd verified it; failing
    -- that, the one in the operator's copy, which can only refuse.
    v_cert_cc := coalesce(verified_credit_code(p_key_id), p_cert->>'credit_code');
    v_checked := u.credit_code IS NULL OR verified_credit_code(p_key_id) IS NOT NULL
                 OR key_verified(p_key_id);
    IF u.credit_code IS NOT NULL AND v_cert_cc IS NOT NULL AND u.credit_code <> v_cert_cc THEN
        IF NOT coalesce(p_force, false) THEN
            PERFORM refuse('CR006', format(
                'credit code mismatch: the certificate carries %s but unit %s has %s; a supervisor may bind it with --force --reason',
                v_cert_cc, p_regno, u.credit_code));
        END IF;
        IF NOT is_supervisor() THEN
            PERFORM refuse('CR007', 'not permitted: only a supervisor may force a binding');
        END IF;
        PERFORM require_text(p_reason, 'reason (required with --force)');
        -- The supervisor answers for the mismatch: no second check at login.
        v_forced := true;
        v_checked := true;
    END IF;
    IF p_cert IS NOT NULL THEN
        INSERT INTO certificates (sha256, key_id, subject, issuer, serial, holder_id,
                                  credit_code, not_before, not_after, source)
        VALUES (p_cert->>'sha256', p_key_id, p_cert->>'subject', p_cert->>'issuer',
                p_cert->>'serial', p_cert->>'holder_id', p_cert->>'credit_code',
                (p_cert->>'not_before')::timestamptz, (p_cert->>'not_after')::timestamptz,
                'operator')
        ON CONFLICT (sha256) DO NOTHING;
    END IF;
    INSERT INTO keys (key_id, registration_no, status, how, ticket, bound_by, credit_checked)
    VALUES (p_key_id, p_regno, 'approved', 'counter', p_ticket, session_user, v_checked)
    ON CONFLICT (key_id) DO UPDATE
        SET registration_no = EXCLUDED.registration_no, status = 'approved', how = 'counter',
            predecessor = NULL, ticket = EXCLUDED.ticket, bound_by = EXCLUDED.bound_by,
            bound_at = now(), status_reason = NULL, updated_at = now(),
            credit_checked = EXCLUDED.credit_checked;
    DELETE FROM pending WHERE key_id = p_key_id;
    PERFORM audit_append('bind', u.office_code, p_key_id, p_regno, p_ticket, p_reason,
                         CASE WHEN k.key_id IS NULL THEN NULL
                              ELSE jsonb_build_object('unit', k.registration_no,
                                                      'status', k.status) END,
                         jsonb_build_object('unit', p_regno, 'status', 'approved',
                                            'forced', v_forced,
                                            'credit_checked', v_checked,
                                            'certificate', p_cert->>'sha256'));
    PERFORM pg_notify('certreg', p_key_id);
END $$;

CREATE OR REPLACE FUNCTION key_transition(p_key_id text, p_reason text, p_action text,
                                          p_from text[], p_to text)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k keys;
    v_office text;
BEGIN
    PERFORM require_key_id(p_key_id);
    PERFORM require_text(p_reason, 'reason');
    SELECT * INTO k FROM keys WHERE key_id = p_key_id FOR UPDATE;
    IF FOUND THEN
        SELECT office_code INTO v_office FROM units WHERE registration_no = k.registration_no;
    END IF;
    IF NOT FOUND OR NOT reads_office(v_office) THEN
        PERFORM refuse('CR002', format('key %s has no association', left(p_key_id, 16)));
    END IF;
    PERFORM require_office(v_office);
    IF NOT k.status = ANY (p_from) THEN
        PERFORM refuse('CR008', format('cannot %s key %s: it is %s', p_action,
                                       left(p_key_id, 16), k.status));
    END IF;
    UPDATE keys SET status = p_to, status_reason = p_reason, updated_at = now()
     WHERE key_id = p_key_id;
    PERFORM audit_append(p_action, v_office, p_key_id, k.registration_no, NULL, p_reason,
                         jsonb_build_object('status', k.status),
                         jsonb_build_object('status', p_to));
    PERFORM pg_notify('certreg', p_key_id);
END $$;

CREATE OR REPLACE FUNCTION unit_set_status(p_regno text, p_status text, p_reason text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    u units;
BEGIN
    IF p_status NOT IN ('active', 'closed') OR p_status IS NULL THEN
        PERFORM refuse('CR001', 'status must be active or closed');
    END IF;
    PERFORM require_text(p_reason, 'reason');
    SELECT * INTO u FROM units WHERE registration_no = p_regno FOR UPDATE;
    IF NOT FOUND OR NOT reads_office(u.office_code) THEN
        PERFORM refuse('CR002', format('unit %s does not exist', p_regno));
    END IF;
    PERFORM require_office(u.office_code);
    IF u.status = p_status THEN
        PERFORM refuse('CR008', format('unit %s is already %s', p_regno, p_status));
    END IF;
    UPDATE units SET status = p_status, updated_at = now() WHERE registration_no = p_regno;
    PERFORM audit_append('unit_status', u.office_code, NULL, p_regno, NULL, p_reason,
                         jsonb_build_object('status', u.status),
                         jsonb_build_object('status', p_status));
    PERFORM pg_notify('certreg', 'unit:' || p_regno);
END $$;

-- Key ids the caller may see: associations under RLS's rule, and the
-- pending registrations and certificates every certreg role reads.
CREATE OR REPLACE FUNCTION key_resolve(p_prefix text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
BEGIN
    IF p_prefix IS NULL OR p_prefix !~ '^[0-9a-f]{8,64}$' THEN
        PERFORM refuse('CR001', 'key id prefix must be 8 to 64 lowercase hex digits');
    END IF;
    RETURN QUERY
        SELECT k.key_id FROM keys k JOIN units u ON u.registration_no = k.registration_no
         WHERE k.key_id LIKE p_prefix || '%' AND reads_office(u.office_code)
        UNION SELECT key_id FROM pending WHERE key_id LIKE p_prefix || '%'
        UNION SELECT key_id FROM certificates WHERE key_id LIKE p_prefix || '%'
        LIMIT 50;
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
    v_used timestamptz;
    v_seen timestamptz;
    v_source text;
    v_checked boolean;
    v_unit_cc text;
    v_cc text := p_cert->>'credit_code';
BEGIN
    PERFORM require_key_id(p_key_id);
    -- An associated key: its unit and office, and when the key and this
    -- certificate were last recorded.
    SELECT k.status, k.registration_no, u.name, u.status, o.code, o.name, o.address, o.phone,
           k.last_used_at, k.credit_checked, u.credit_code, c.last_seen, c.source
      INTO key_status, registration_no, unit_name, unit_status, office_code, office_name,
           office_address, office_phone, v_used, v_checked, v_unit_cc, v_seen, v_source
      FROM keys k
      JOIN units u ON u.registration_no = k.registration_no
      JOIN offices o ON o.code = u.office_code
      LEFT JOIN certificates c ON c.sha256 = p_cert->>'sha256'
     WHERE k.key_id = p_key_id;
    IF FOUND THEN
        IF p_cert IS NOT NULL AND (last_use_due(v_seen) OR v_source IS DISTINCT FROM 'daemon')
        THEN
            PERFORM certificate_seen(p_key_id, p_cert);
        END IF;
        -- A binding made before any verified certificate: the credit-code
        -- rule of key_bind(), now with verified facts.
        IF NOT v_checked AND v_cc IS NOT NULL THEN
            IF v_unit_cc IS NOT NULL AND v_unit_cc <> v_cc THEN
                RETURN QUERY SELECT * FROM decide_pending(p_key_id, p_cert, p_peer);
                RETURN;
            END IF;
            UPDATE keys SET credit_checked = true WHERE key_id = p_key_id;
        END IF;
        IF last_use_due(v_used) THEN
            UPDATE keys SET last_used_at = now() WHERE key_id = p_key_id;
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
           AND (u.credit_code IS NULL OR v_cc IS NULL OR u.credit_code = v_cc);
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
    RETURN QUERY SELECT * FROM decide_pending(p_key_id, p_cert, p_peer);
END $$;

-- The KEY_NOT_APPROVED half of decide(): the pending registration, and the
-- office of the one active unit with the certificate's credit code (where
-- to send the user), if there is exactly one.
CREATE FUNCTION decide_pending(p_key_id text, p_cert jsonb, p_peer text)
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
    v_source text;
BEGIN
    PERFORM require_key_id(p_key_id);
    SELECT k.last_used_at, c.last_seen, c.source INTO v_used, v_seen, v_source
      FROM keys k LEFT JOIN certificates c ON c.sha256 = p_cert->>'sha256'
     WHERE k.key_id = p_key_id;
    IF NOT FOUND THEN
        PERFORM certificate_seen(p_key_id, p_cert);
        UPDATE pending SET attempts = attempts + 1, last_seen = now(), last_peer = p_peer
         WHERE key_id = p_key_id;
        RETURN;
    END IF;
    IF p_cert IS NOT NULL AND (last_use_due(v_seen) OR v_source IS DISTINCT FROM 'daemon') THEN
        PERFORM certificate_seen(p_key_id, p_cert);
    END IF;
    IF last_use_due(v_used) THEN
        UPDATE keys SET last_used_at = now() WHERE key_id = p_key_id;
    END IF;
END $$;

REVOKE ALL ON FUNCTION reads_office(text), verified_credit_code(text), key_verified(text),
    decide_pending(text, jsonb, text) FROM PUBLIC;

RESET ROLE;
