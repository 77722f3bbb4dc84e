-- functions/50_keys.sql - key associations and the certificates seen over
-- keys: who reported which facts (certificates.source), binding with the
-- credit-code rule, suspend/resume/cancel, key-id prefixes.
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

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
CREATE OR REPLACE FUNCTION verified_credit_code(p_key_id text) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT c.credit_code FROM certificates c
          WHERE c.key_id = p_key_id AND c.source = 'daemon' AND c.credit_code IS NOT NULL
          ORDER BY c.not_after DESC LIMIT 1),
        (SELECT p.credit_code FROM pending p WHERE p.key_id = p_key_id))
$$;

-- Has certregd verified any certificate over this key?
CREATE OR REPLACE FUNCTION key_verified(p_key_id text) RETURNS boolean
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
    PERFORM notify_change(p_key_id);
    PERFORM notify_holder_pending(p_key_id);
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
    PERFORM notify_change(p_key_id);
    -- Resumed, suspended or cancelled: each may change a renewal's decision.
    PERFORM notify_holder_pending(p_key_id);
END $$;

CREATE OR REPLACE FUNCTION key_suspend(p_key_id text, p_reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT key_transition(p_key_id, p_reason, 'suspend', '{approved}', 'suspended')
$$;

CREATE OR REPLACE FUNCTION key_resume(p_key_id text, p_reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT key_transition(p_key_id, p_reason, 'resume', '{suspended}', 'approved')
$$;

CREATE OR REPLACE FUNCTION key_cancel(p_key_id text, p_reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT key_transition(p_key_id, p_reason, 'cancel', '{approved,suspended}', 'cancelled')
$$;

-- Key ids the caller may see: associations under RLS's rule, the pending
-- registrations and refusals every certreg role reads, and certificates
-- as certificates_read lets them through (018_certificates_read.sql): of
-- a key the caller reads or a pending one, both found above, or any for
-- whoever reads every unit.
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
        UNION SELECT key_id FROM certificates
               WHERE key_id LIKE p_prefix || '%' AND (SELECT reads_all())
        UNION SELECT key_id FROM refusals WHERE key_id LIKE p_prefix || '%'
        LIMIT 50;
END $$;

-- key expiring: the approved keys, of the offices the caller reads, whose
-- newest certificate expires before now() + p_days (or has expired), with
-- that certificate's expiry and subject (of two as new, the one with the
-- lower SHA-256). SECURITY DEFINER so that one plan serves every login:
-- as the caller, the look-up of each key's newest certificate through
-- keys_v, units_v and certificates_v under their policies took 13 s for a
-- supervisor on 1,000,000 keys (docs/SECURITY.md, "Review findings:
-- another office's certificates"). The office rule, reads_office(), is
-- applied once per office, and the offices found are a constant of the
-- query: an operator's plan starts from its units, a supervisor's reads
-- every certificate once. The CLI joins the rows with keys_v, so RLS has
-- the last word. No JIT: compiling took 0.2 s of a report run once.
CREATE OR REPLACE FUNCTION keys_expiring(p_days integer)
    RETURNS TABLE (key_id text, not_after timestamptz, subject text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp SET jit = off
    AS $$
DECLARE
    v_offices text[] := (SELECT array_agg(o.code) FROM offices o WHERE reads_office(o.code));
BEGIN
    RETURN QUERY
        SELECT DISTINCT ON (c.key_id) c.key_id, c.not_after, c.subject
          FROM certificates c
          JOIN keys k ON k.key_id = c.key_id
          JOIN units u ON u.registration_no = k.registration_no
         WHERE u.office_code = ANY (v_offices) AND k.status = 'approved'
           AND c.not_after < now() + make_interval(days => p_days)
           AND NOT EXISTS (SELECT FROM certificates n
                            WHERE n.key_id = c.key_id AND n.not_after > c.not_after)
         ORDER BY c.key_id, c.sha256;
END $$;

RESET ROLE;
