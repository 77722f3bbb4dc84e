-- 002_rules.sql - every business rule of certreg, as SECURITY DEFINER
-- functions with a fixed search_path (docs/REGISTRY-API.md).
--
-- Refusals raise SQLSTATE class CR with a message naming the field or rule;
-- certreg-admin shows them as they are. Every change appends an audit row
-- and notifies channel 'certreg' so running daemons drop what they cached.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

-- ---------------------------------------------------------------- helpers

CREATE FUNCTION refuse(p_state text, p_message text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = p_message;
END $$;

-- GB 32100-2015 check character, and the GB 11714 check digit of the
-- organisation code embedded at positions 9-17.
CREATE FUNCTION uscc_valid(p text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    charset constant text := '0123456789ABCDEFGHJKLMNPQRTUWXY';
    sum int := 0;
    weight int := 1;
    check_value int;
    org_weights constant int[] := '{3,7,9,10,5,8,4,2}';
    c text;
    v int;
BEGIN
    IF p IS NULL OR p !~ '^[0-9ABCDEFGHJKLMNPQRTUWXY]{2}[0-9]{6}[0-9A-Z]{9}[0-9ABCDEFGHJKLMNPQRTUWXY]$' THEN
        RETURN false;
    END IF;
    FOR i IN 1..17 LOOP
        v := strpos(charset, substr(p, i, 1)) - 1;
        IF v < 0 THEN
            RETURN false;
        END IF;
        sum := sum + v * weight;
        weight := (weight * 3) % 31;
    END LOOP;
    check_value := (31 - sum % 31) % 31;
    IF substr(charset, check_value + 1, 1) <> substr(p, 18, 1) THEN
        RETURN false;
    END IF;
    sum := 0;
    FOR i IN 1..8 LOOP
        c := substr(p, 8 + i, 1);
        v := CASE WHEN c ~ '[0-9]' THEN ascii(c) - 48 ELSE ascii(c) - 55 END;
        sum := sum + v * org_weights[i];
    END LOOP;
    check_value := 11 - sum % 11;
    RETURN substr(p, 17, 1) = CASE check_value WHEN 10 THEN 'X' WHEN 11 THEN '0'
                                               ELSE check_value::text END;
END $$;

CREATE FUNCTION is_supervisor() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR pg_has_role(session_user, 'certreg_supervisor', 'MEMBER')
$$;

-- An operator changes only units of their offices; a supervisor any.
CREATE FUNCTION require_office(p_office text) RETURNS void
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT (is_supervisor() OR p_office = ANY (my_offices())) THEN
        PERFORM refuse('CR007', format(
            'not permitted: %s may change only units of their own offices (%s); this unit belongs to office %s',
            session_user, coalesce(nullif(array_to_string(my_offices(), ', '), ''), 'none'),
            p_office));
    END IF;
END $$;

CREATE FUNCTION require_text(p_value text, p_field text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_value IS NULL OR btrim(p_value) = '' THEN
        PERFORM refuse('CR001', format('%s is required', p_field));
    END IF;
END $$;

CREATE FUNCTION require_key_id(p_key_id text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_key_id IS NULL OR p_key_id !~ '^[0-9a-f]{64}$' THEN
        PERFORM refuse('CR001', 'key id must be 64 lowercase hex digits');
    END IF;
END $$;

-- ------------------------------------------------------------------ audit

CREATE FUNCTION audit_hash(p_prev text, p_id bigint, p_at timestamptz, p_operator text,
                           p_office text, p_action text, p_key text, p_regno text,
                           p_ticket text, p_reason text, p_before jsonb, p_after jsonb)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
    -- jsonb's text form is canonical; the time as integer microseconds does
    -- not depend on the session's TimeZone.
    SELECT encode(sha256(convert_to(p_prev || jsonb_build_array(
        p_id, (extract(epoch FROM p_at) * 1000000)::bigint, p_operator, p_office, p_action,
        p_key, p_regno, p_ticket, p_reason, p_before, p_after)::text, 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_append(p_action text, p_office text, p_key text, p_regno text,
                             p_ticket text, p_reason text, p_before jsonb, p_after jsonb)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_prev text;
    v_id bigint;
    v_at timestamptz := clock_timestamp();
BEGIN
    -- One writer at a time, so the chain never forks.
    PERFORM pg_advisory_xact_lock(hashtext('certreg.audit'));
    SELECT hash INTO v_prev FROM audit ORDER BY id DESC LIMIT 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_id := nextval('audit_id_seq');
    INSERT INTO audit (id, at, operator, office_code, action, key_id, registration_no, ticket,
                       reason, before, after, prev_hash, hash)
    VALUES (v_id, v_at, session_user, p_office, p_action, p_key, p_regno, p_ticket, p_reason,
            p_before, p_after, v_prev,
            audit_hash(v_prev, v_id, v_at, session_user, p_office, p_action, p_key, p_regno,
                       p_ticket, p_reason, p_before, p_after));
END $$;

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'CR009',
        MESSAGE = 'the audit log is append-only: ' || TG_OP || ' refused';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

CREATE FUNCTION audit_verify()
    RETURNS TABLE (ok boolean, checked bigint, first_broken_id bigint, detail text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    r audit;
    v_prev text := repeat('0', 64);
    n bigint := 0;
BEGIN
    FOR r IN SELECT * FROM audit ORDER BY id LOOP
        n := n + 1;
        IF r.prev_hash <> v_prev THEN
            RETURN QUERY SELECT false, n, r.id,
                format('row %s does not follow the row before it (a row was removed or altered)', r.id);
            RETURN;
        END IF;
        IF r.hash <> audit_hash(r.prev_hash, r.id, r.at, r.operator, r.office_code, r.action,
                                r.key_id, r.registration_no, r.ticket, r.reason, r.before,
                                r.after) THEN
            RETURN QUERY SELECT false, n, r.id, format('row %s was altered', r.id);
            RETURN;
        END IF;
        v_prev := r.hash;
    END LOOP;
    RETURN QUERY SELECT true, n, NULL::bigint, format('%s rows, chain intact', n);
END $$;

-- ---------------------------------------------------- offices, operators, units

CREATE FUNCTION office_add(p_code text, p_name text, p_address text, p_phone text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
BEGIN
    IF NOT is_supervisor() THEN
        PERFORM refuse('CR007', 'not permitted: only a supervisor may add an office');
    END IF;
    IF p_code IS NULL OR p_code !~ '^[A-Za-z0-9_-]{1,16}$' THEN
        PERFORM refuse('CR001', 'office code must be 1 to 16 letters, digits, _ or -');
    END IF;
    PERFORM require_text(p_name, 'office name');
    IF EXISTS (SELECT FROM offices WHERE code = p_code) THEN
        PERFORM refuse('CR003', format('office %s already exists', p_code));
    END IF;
    INSERT INTO offices (code, name, address, phone)
    VALUES (p_code, btrim(p_name), coalesce(p_address, ''), coalesce(p_phone, ''));
    PERFORM audit_append('office_add', p_code, NULL, NULL, NULL, NULL, NULL,
                         jsonb_build_object('code', p_code, 'name', p_name, 'address', p_address,
                                            'phone', p_phone));
    PERFORM pg_notify('certreg', 'office:' || p_code);
END $$;

CREATE FUNCTION operator_add(p_login text, p_office text, p_role text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_role text := coalesce(p_role, 'operator');
BEGIN
    IF NOT is_supervisor() THEN
        PERFORM refuse('CR007', 'not permitted: only a supervisor may add an operator');
    END IF;
    IF p_login IS NULL OR p_login !~ '^[a-z_][a-z0-9_.-]{0,62}$' THEN
        PERFORM refuse('CR001', 'login must be lowercase letters, digits, _ . or - (at most 63)');
    END IF;
    IF v_role NOT IN ('operator', 'supervisor', 'auditor') THEN
        PERFORM refuse('CR001', 'role must be operator, supervisor or auditor');
    END IF;
    IF NOT EXISTS (SELECT FROM offices WHERE code = p_office) THEN
        PERFORM refuse('CR002', format('office %s does not exist', p_office));
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = p_login AND (rolsuper OR p_login LIKE 'certreg\_%')) THEN
        PERFORM refuse('CR007', format('not permitted: %s is a system role', p_login));
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = p_login) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', p_login);
    END IF;
    EXECUTE format('GRANT %I TO %I', 'certreg_' || v_role, p_login);
    INSERT INTO operators (login, role) VALUES (p_login, v_role)
        ON CONFLICT (login) DO UPDATE SET role = EXCLUDED.role;
    INSERT INTO operator_offices (login, office_code) VALUES (p_login, p_office)
        ON CONFLICT DO NOTHING;
    PERFORM audit_append('operator_add', p_office, NULL, NULL, NULL, NULL, NULL,
                         jsonb_build_object('login', p_login, 'role', v_role));
END $$;

CREATE FUNCTION unit_add(p_regno text, p_name text, p_office text, p_credit_code text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
BEGIN
    IF p_regno IS NULL OR p_regno !~ '^[0-9]{6,20}$' THEN
        PERFORM refuse('CR001', 'registration number must be 6 to 20 digits');
    END IF;
    PERFORM require_text(p_name, 'unit name');
    IF p_credit_code IS NOT NULL AND NOT uscc_valid(p_credit_code) THEN
        PERFORM refuse('CR001', format(
            'credit code %s is not a valid Unified Social Credit Code (GB 32100-2015: 18 characters with a valid check character)',
            p_credit_code));
    END IF;
    IF NOT EXISTS (SELECT FROM offices WHERE code = p_office) THEN
        PERFORM refuse('CR002', format('office %s does not exist', p_office));
    END IF;
    PERFORM require_office(p_office);
    IF EXISTS (SELECT FROM units WHERE registration_no = p_regno) THEN
        PERFORM refuse('CR003', format('unit %s already exists', p_regno));
    END IF;
    INSERT INTO units (registration_no, name, credit_code, office_code)
    VALUES (p_regno, btrim(p_name), p_credit_code, p_office);
    PERFORM audit_append('unit_add', p_office, NULL, p_regno, NULL, NULL, NULL,
                         jsonb_build_object('name', p_name, 'credit_code', p_credit_code,
                                            'office', p_office, 'status', 'active'));
END $$;

CREATE FUNCTION unit_set_status(p_regno text, p_status text, p_reason text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    u units;
BEGIN
    IF p_status NOT IN ('active', 'closed') OR p_status IS NULL THEN
        PERFORM refuse('CR001', 'status must be active or closed');
    END IF;
    PERFORM require_text(p_reason, 'reason');
    SELECT * INTO u FROM units WHERE registration_no = p_regno FOR UPDATE;
    IF NOT FOUND THEN
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

-- -------------------------------------------------------------------- keys

-- Records (or refreshes) a certificate as seen; p_cert per REGISTRY-API.md.
CREATE FUNCTION certificate_seen(p_key_id text, p_cert jsonb) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO certificates (sha256, key_id, subject, issuer, serial, holder_id, credit_code,
                              not_before, not_after)
    SELECT p_cert->>'sha256', p_key_id, p_cert->>'subject', p_cert->>'issuer',
           p_cert->>'serial', p_cert->>'holder_id', p_cert->>'credit_code',
           (p_cert->>'not_before')::timestamptz, (p_cert->>'not_after')::timestamptz
     WHERE p_cert IS NOT NULL
    ON CONFLICT (sha256) DO UPDATE SET last_seen = now()
$$;

CREATE FUNCTION key_bind(p_key_id text, p_regno text, p_ticket text, p_force boolean,
                         p_reason text, p_cert jsonb)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    u units;
    k keys;
    v_cert_cc text;
    v_forced boolean := false;
BEGIN
    PERFORM require_key_id(p_key_id);
    PERFORM require_text(p_ticket, 'ticket');
    IF p_cert IS NOT NULL AND p_cert->>'key_id' IS DISTINCT FROM p_key_id THEN
        PERFORM refuse('CR001', 'the certificate''s key id does not match the key id given');
    END IF;
    SELECT * INTO u FROM units WHERE registration_no = p_regno;
    IF NOT FOUND THEN
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
        PERFORM refuse('CR004', format(
            'key %s is bound to another unit (%s); cancel that association first',
            left(p_key_id, 16), k.registration_no));
    END IF;
    -- The credit code the CA asserts, from this certificate or the newest seen.
    v_cert_cc := p_cert->>'credit_code';
    IF v_cert_cc IS NULL THEN
        SELECT credit_code INTO v_cert_cc FROM certificates
         WHERE key_id = p_key_id AND credit_code IS NOT NULL ORDER BY not_after DESC LIMIT 1;
    END IF;
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
        v_forced := true;
    END IF;
    PERFORM certificate_seen(p_key_id, p_cert);
    INSERT INTO keys (key_id, registration_no, status, how, ticket, bound_by)
    VALUES (p_key_id, p_regno, 'approved', 'counter', p_ticket, session_user)
    ON CONFLICT (key_id) DO UPDATE
        SET registration_no = EXCLUDED.registration_no, status = 'approved', how = 'counter',
            predecessor = NULL, ticket = EXCLUDED.ticket, bound_by = EXCLUDED.bound_by,
            bound_at = now(), status_reason = NULL, updated_at = now();
    DELETE FROM pending WHERE key_id = p_key_id;
    PERFORM audit_append('bind', u.office_code, p_key_id, p_regno, p_ticket, p_reason,
                         CASE WHEN k.key_id IS NULL THEN NULL
                              ELSE jsonb_build_object('unit', k.registration_no,
                                                      'status', k.status) END,
                         jsonb_build_object('unit', p_regno, 'status', 'approved',
                                            'forced', v_forced,
                                            'certificate', p_cert->>'sha256'));
    PERFORM pg_notify('certreg', p_key_id);
END $$;

-- suspend / resume / cancel: one transition table, one function.
CREATE FUNCTION key_transition(p_key_id text, p_reason text, p_action text, p_from text[],
                               p_to text)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k keys;
    v_office text;
BEGIN
    PERFORM require_key_id(p_key_id);
    PERFORM require_text(p_reason, 'reason');
    SELECT * INTO k FROM keys WHERE key_id = p_key_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM refuse('CR002', format('key %s has no association', left(p_key_id, 16)));
    END IF;
    SELECT office_code INTO v_office FROM units WHERE registration_no = k.registration_no;
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

CREATE FUNCTION key_suspend(p_key_id text, p_reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT key_transition(p_key_id, p_reason, 'suspend', '{approved}', 'suspended')
$$;
CREATE FUNCTION key_resume(p_key_id text, p_reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT key_transition(p_key_id, p_reason, 'resume', '{suspended}', 'approved')
$$;
CREATE FUNCTION key_cancel(p_key_id text, p_reason text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT key_transition(p_key_id, p_reason, 'cancel', '{approved,suspended}', 'cancelled')
$$;

CREATE FUNCTION key_resolve(p_prefix text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
BEGIN
    IF p_prefix IS NULL OR p_prefix !~ '^[0-9a-f]{8,64}$' THEN
        PERFORM refuse('CR001', 'key id prefix must be 8 to 64 lowercase hex digits');
    END IF;
    RETURN QUERY
        SELECT key_id FROM keys WHERE key_id LIKE p_prefix || '%'
        UNION SELECT key_id FROM pending WHERE key_id LIKE p_prefix || '%'
        UNION SELECT key_id FROM certificates WHERE key_id LIKE p_prefix || '%'
        LIMIT 50;
END $$;

-- ----------------------------------------------------------------- daemon

CREATE FUNCTION decide(p_key_id text, p_cert jsonb, p_peer text, p_renewal boolean)
    RETURNS TABLE (key_status text, registration_no text, unit_name text, unit_status text,
                   office_code text, office_name text, office_address text,
                   office_phone text, renewed_from text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_status text;
    v_regno text;
    v_pred text;
    v_units int;
BEGIN
    PERFORM require_key_id(p_key_id);
    PERFORM certificate_seen(p_key_id, p_cert);
    SELECT k.status, k.registration_no INTO v_status, v_regno FROM keys k
     WHERE k.key_id = p_key_id;
    -- Renewal continuity (contract section 3): a new key whose issuer and
    -- holder id match a certificate of an approved key of an active unit.
    IF NOT FOUND AND p_renewal AND p_cert->>'holder_id' IS NOT NULL THEN
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
        ELSE
            v_pred := NULL;
        END IF;
    ELSE
        v_pred := NULL;
    END IF;
    IF v_status IS NOT NULL THEN
        UPDATE keys SET last_used_at = now() WHERE key_id = p_key_id;
        RETURN QUERY
            SELECT v_status, u.registration_no, u.name, u.status, o.code, o.name, o.address,
                   o.phone, v_pred
              FROM units u JOIN offices o ON o.code = u.office_code
             WHERE u.registration_no = v_regno;
        RETURN;
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

-- A decision served from the daemon's cache: bookkeeping only.
CREATE FUNCTION record_use(p_key_id text, p_cert jsonb, p_peer text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
BEGIN
    PERFORM require_key_id(p_key_id);
    PERFORM certificate_seen(p_key_id, p_cert);
    UPDATE keys SET last_used_at = now() WHERE key_id = p_key_id;
    IF NOT FOUND THEN
        UPDATE pending SET attempts = attempts + 1, last_seen = now(), last_peer = p_peer
         WHERE key_id = p_key_id;
    END IF;
END $$;

CREATE FUNCTION ping() RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce(max(version), 0) FROM certreg_meta.migrations
$$;

-- ------------------------------------------------------------------ grants

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA certreg FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide(text, jsonb, text, boolean), record_use(text, jsonb, text),
    ping() TO certreg_daemon;
GRANT EXECUTE ON FUNCTION office_add(text, text, text, text), operator_add(text, text, text),
    unit_add(text, text, text, text), unit_set_status(text, text, text),
    key_bind(text, text, text, boolean, text, jsonb), key_suspend(text, text),
    key_resume(text, text), key_cancel(text, text)
    TO certreg_operator, certreg_supervisor;
GRANT EXECUTE ON FUNCTION key_resolve(text), audit_verify(), reads_all(), my_offices(),
    uscc_valid(text) TO certreg_operator, certreg_supervisor, certreg_auditor;

RESET ROLE;
