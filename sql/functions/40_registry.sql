-- functions/40_registry.sql - offices, operators and units: the counter-
-- staff functions that create and change them.
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

CREATE OR REPLACE FUNCTION office_add(p_code text, p_name text, p_address text, p_phone text)
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
    PERFORM notify_change('office:' || p_code);
END $$;

-- A login has one role, whichever offices it serves (operators.login is the
-- key): adding it again with another role, through any office, changes its
-- role everywhere. The rules ask PostgreSQL's role membership
-- (is_supervisor(), reads_all()), so the login leaves the other certreg
-- group roles here, or a supervisor re-added as an operator would stay one.
CREATE OR REPLACE FUNCTION operator_add(p_login text, p_office text, p_role text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_role text := coalesce(p_role, 'operator');
    v_before text;
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
    SELECT role INTO v_before FROM operators WHERE login = p_login FOR UPDATE;
    EXECUTE format('GRANT %I TO %I', 'certreg_' || v_role, p_login);
    PERFORM operator_revoke_roles(p_login, 'certreg_' || v_role);
    INSERT INTO operators (login, role) VALUES (p_login, v_role)
        ON CONFLICT (login) DO UPDATE SET role = EXCLUDED.role;
    INSERT INTO operator_offices (login, office_code) VALUES (p_login, p_office)
        ON CONFLICT DO NOTHING;
    PERFORM audit_append('operator_add', p_office, NULL, NULL, NULL, NULL,
                         CASE WHEN v_before IS NOT NULL
                              THEN jsonb_build_object('login', p_login, 'role', v_before) END,
                         jsonb_build_object('login', p_login, 'role', v_role));
END $$;

-- Takes the login out of every certreg group role but p_keep (NULL: all),
-- directly granted ones only: those are what operator_add gives.
CREATE OR REPLACE FUNCTION operator_revoke_roles(p_login text, p_keep text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    FOR r IN SELECT g.rolname FROM pg_auth_members m
               JOIN pg_roles g ON g.oid = m.roleid
               JOIN pg_roles l ON l.oid = m.member
              WHERE l.rolname = p_login
                AND g.rolname IN ('certreg_operator', 'certreg_supervisor', 'certreg_auditor')
                AND g.rolname IS DISTINCT FROM p_keep LOOP
        EXECUTE format('REVOKE %I FROM %I', r, p_login);
    END LOOP;
END $$;

-- Takes an office (or, without p_office, every office) away from an
-- operator; with no office left the login loses every certreg group role
-- it holds (not only the one operators names, should an older rule have
-- left another), and can read nothing more. The login itself stays: it may
-- serve elsewhere.
CREATE OR REPLACE FUNCTION operator_remove(p_login text, p_office text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    o operators;
    v_offices text[];
BEGIN
    IF NOT is_supervisor() THEN
        PERFORM refuse('CR007', 'not permitted: only a supervisor may remove an operator');
    END IF;
    SELECT * INTO o FROM operators WHERE login = p_login FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM refuse('CR002', format('%s is not an operator', p_login));
    END IF;
    IF p_login = session_user THEN
        PERFORM refuse('CR007', 'not permitted: an operator cannot remove themselves');
    END IF;
    IF p_office IS NOT NULL AND NOT EXISTS (SELECT FROM operator_offices
                                             WHERE login = p_login AND office_code = p_office)
    THEN
        PERFORM refuse('CR002', format('%s does not belong to office %s', p_login, p_office));
    END IF;
    DELETE FROM operator_offices
     WHERE login = p_login AND (p_office IS NULL OR office_code = p_office);
    SELECT coalesce(array_agg(office_code ORDER BY office_code), '{}') INTO v_offices
      FROM operator_offices WHERE login = p_login;
    IF cardinality(v_offices) = 0 THEN
        DELETE FROM operators WHERE login = p_login;
        PERFORM operator_revoke_roles(p_login, NULL);
    END IF;
    PERFORM audit_append('operator_remove', p_office, NULL, NULL, NULL, NULL,
                         jsonb_build_object('login', p_login, 'role', o.role),
                         jsonb_build_object('login', p_login, 'offices', v_offices));
END $$;

CREATE OR REPLACE FUNCTION unit_add(p_regno text, p_name text, p_office text, p_credit_code text)
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
    PERFORM notify_change('unit:' || p_regno);
END $$;

-- `unit list --search`: the registration numbers of the units the caller
-- may read (reads_office, the rule of 001's policy) whose name contains
-- p_name's text or credit code p_code's (ILIKE patterns, '%...%'), or whose
-- registration number matches p_regno (a LIKE pattern, '...%'). The
-- patterns are the caller's to make (admin/pasted.c escapes what the clerk
-- typed); called with anything at all, it returns only numbers units_v
-- would show that caller.
--
-- SECURITY DEFINER for the indexes of 016_unit_search.sql: under
-- row-level security a condition the caller writes may run before the
-- policy only when its operator is leakproof, and ILIKE is not, so an
-- operator's search read every unit and ran the policy's functions on each
-- (a second for 100,000 units). As the owner no policy applies; the
-- office rule is applied here, to the rows found. PL/pgSQL, so the query
-- is planned with the patterns' values (a session's first plans are).
CREATE OR REPLACE FUNCTION unit_search(p_name text, p_code text, p_regno text)
    RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = certreg, pg_temp AS $$
BEGIN
    RETURN QUERY
        SELECT u.registration_no FROM units u
         WHERE (u.name ILIKE p_name OR u.credit_code ILIKE p_code
                OR u.registration_no LIKE p_regno)
           AND reads_office(u.office_code);
END $$;

RESET ROLE;
