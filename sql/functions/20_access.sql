-- functions/20_access.sql - who may read and change which office's rows: the
-- rule row-level security (001's policies) and every changing function
-- apply, and that refusals use so that they name nothing the caller may not
-- read.
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

-- Who may read which office's rows (RLS). SECURITY DEFINER so the policy
-- can read operator_offices whatever the caller may read.
CREATE OR REPLACE FUNCTION reads_all() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR pg_has_role(session_user, 'certreg_supervisor', 'MEMBER')
        OR pg_has_role(session_user, 'certreg_auditor', 'MEMBER')
$$;

CREATE OR REPLACE FUNCTION my_offices() RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce(array_agg(office_code), '{}') FROM operator_offices
     WHERE login = session_user
$$;

-- May the caller read this office's rows (the RLS rule of 001, for messages)?
CREATE OR REPLACE FUNCTION reads_office(p_office text) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT reads_all() OR p_office = ANY (my_offices())
$$;

CREATE OR REPLACE FUNCTION is_supervisor() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR pg_has_role(session_user, 'certreg_supervisor', 'MEMBER')
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

RESET ROLE;
