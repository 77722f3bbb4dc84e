-- 001_schema.sql - tables, roles, privileges and row-level security.
--
-- Ownership: every object belongs to certreg_owner, a NOLOGIN role, so the
-- SECURITY DEFINER functions of 002 run with its rights, not a superuser's.
-- Logins get rights only through the four group roles:
--   certreg_daemon      EXECUTE decide/record_use/ping; no table access
--   certreg_operator    read (RLS: own offices), change via functions
--   certreg_supervisor  read all, change any office via functions, force binds
--   certreg_auditor     read all, change nothing
-- Applied by certreg-admin db migrate as a superuser, in one transaction.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['certreg_daemon', 'certreg_operator', 'certreg_supervisor',
                             'certreg_auditor'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    -- CREATEROLE: operator_add creates counter staff logins.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'certreg_owner') THEN
        CREATE ROLE certreg_owner NOLOGIN CREATEROLE;
    END IF;
END $$;

GRANT USAGE ON SCHEMA certreg_meta TO certreg_owner;
GRANT SELECT ON certreg_meta.migrations TO certreg_owner;
CREATE SCHEMA certreg AUTHORIZATION certreg_owner;
REVOKE ALL ON SCHEMA certreg FROM PUBLIC;
GRANT USAGE ON SCHEMA certreg TO certreg_daemon, certreg_operator, certreg_supervisor,
    certreg_auditor;

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

CREATE TABLE offices (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{1,16}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address     text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE units (
    registration_no text PRIMARY KEY CHECK (registration_no ~ '^[0-9]{6,20}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    credit_code     text,
    office_code     text NOT NULL REFERENCES offices,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_office ON units (office_code);
CREATE INDEX units_credit_code ON units (credit_code) WHERE credit_code IS NOT NULL;

CREATE TABLE keys (
    key_id          text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{64}$'),
    registration_no text NOT NULL REFERENCES units,
    status          text NOT NULL CHECK (status IN ('approved', 'suspended', 'cancelled')),
    how             text NOT NULL CHECK (how IN ('counter', 'renewal')),
    predecessor     text,
    ticket          text,
    bound_by        text NOT NULL,
    bound_at        timestamptz NOT NULL DEFAULT now(),
    status_reason   text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz
);
CREATE INDEX keys_unit ON keys (registration_no);

-- Every certificate a decision was made on, or bound with key bind --cert.
CREATE TABLE certificates (
    sha256      text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    key_id      text NOT NULL CHECK (key_id ~ '^[0-9a-f]{64}$'),
    subject     text NOT NULL,
    issuer      text NOT NULL,
    serial      text NOT NULL,
    holder_id   text,
    credit_code text,
    not_before  timestamptz NOT NULL,
    not_after   timestamptz NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_key ON certificates (key_id, not_after);
-- Renewal continuity looks predecessors up by issuer and holder id.
CREATE INDEX certificates_holder ON certificates (issuer, holder_id) WHERE holder_id IS NOT NULL;

-- Keys that tried to log in without an approved association.
CREATE TABLE pending (
    key_id      text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{64}$'),
    cert_sha256 text,
    subject     text,
    issuer      text,
    holder_id   text,
    credit_code text,
    not_after   timestamptz,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 1,
    last_peer   text
);
CREATE INDEX pending_last_seen ON pending (last_seen DESC);
-- pending list --search: fragments of the unit name (in the subject),
-- credit code or holder id, with ILIKE '%...%'.
CREATE INDEX pending_subject_trgm ON pending USING gin (subject gin_trgm_ops);
CREATE INDEX pending_credit_trgm ON pending USING gin (credit_code gin_trgm_ops);
CREATE INDEX pending_holder_trgm ON pending USING gin (holder_id gin_trgm_ops);

CREATE TABLE operators (
    login       text PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('operator', 'supervisor', 'auditor')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE operator_offices (
    login       text NOT NULL REFERENCES operators ON DELETE CASCADE,
    office_code text NOT NULL REFERENCES offices,
    PRIMARY KEY (login, office_code)
);

-- Append-only and hash-chained: hash = sha256(prev_hash || canonical row).
CREATE TABLE audit (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL,
    operator        text NOT NULL,
    office_code     text,
    action          text NOT NULL,
    key_id          text,
    registration_no text,
    ticket          text,
    reason          text,
    before          jsonb,
    after           jsonb,
    prev_hash       text NOT NULL,
    hash            text NOT NULL
);
CREATE INDEX audit_unit ON audit (registration_no);
CREATE INDEX audit_key ON audit (key_id);

-- Who may read which office's rows (RLS). SECURITY DEFINER so the policy
-- can read operator_offices whatever the caller may read.
CREATE FUNCTION reads_all() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR pg_has_role(session_user, 'certreg_supervisor', 'MEMBER')
        OR pg_has_role(session_user, 'certreg_auditor', 'MEMBER')
$$;
CREATE FUNCTION my_offices() RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT coalesce(array_agg(office_code), '{}') FROM operator_offices
     WHERE login = session_user
$$;

ALTER TABLE units ENABLE ROW LEVEL SECURITY;
ALTER TABLE keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY units_read ON units FOR SELECT
    USING (reads_all() OR office_code = ANY (my_offices()));
-- Keys follow their unit (the subquery is itself filtered by units_read).
CREATE POLICY keys_read ON keys FOR SELECT
    USING (EXISTS (SELECT FROM units u WHERE u.registration_no = keys.registration_no));
CREATE POLICY audit_read ON audit FOR SELECT
    USING (reads_all() OR office_code = ANY (my_offices()));

-- Read access for people, through views that run as the caller so RLS holds.
CREATE VIEW offices_v WITH (security_invoker = true) AS
    SELECT code, name, address, phone, created_at FROM offices;
CREATE VIEW units_v WITH (security_invoker = true) AS
    SELECT u.registration_no, u.name, u.office_code, o.name AS office_name, u.credit_code,
           u.status, (SELECT count(*) FROM keys k
                       WHERE k.registration_no = u.registration_no) AS key_count,
           u.created_at, u.updated_at
      FROM units u JOIN offices o ON o.code = u.office_code;
CREATE VIEW keys_v WITH (security_invoker = true) AS
    SELECT k.key_id, k.registration_no, u.name AS unit_name, u.office_code, k.status, k.how,
           k.predecessor, k.ticket, k.bound_at, k.bound_by, k.status_reason, k.updated_at,
           k.last_used_at,
           (SELECT max(c.not_after) FROM certificates c WHERE c.key_id = k.key_id) AS not_after
      FROM keys k JOIN units u ON u.registration_no = k.registration_no;
CREATE VIEW certificates_v WITH (security_invoker = true) AS
    SELECT sha256, key_id, subject, issuer, serial, holder_id, credit_code, not_before,
           not_after, first_seen, last_seen FROM certificates;
-- office_code: the office of the one active unit whose credit code the
-- certificate carries, when there is exactly one (where to send the user).
CREATE VIEW pending_v WITH (security_invoker = true) AS
    SELECT p.key_id, p.subject, p.issuer, p.credit_code, p.holder_id,
           (SELECT min(u.office_code) FROM units u
             WHERE u.credit_code = p.credit_code AND u.status = 'active'
            HAVING count(*) = 1) AS office_code,
           p.attempts, p.first_seen, p.last_seen, p.last_peer, p.not_after, p.cert_sha256
      FROM pending p;
CREATE VIEW audit_v WITH (security_invoker = true) AS
    SELECT id, at, operator, office_code, action, key_id, registration_no, ticket, reason,
           before, after, prev_hash, hash FROM audit;

REVOKE ALL ON ALL TABLES IN SCHEMA certreg FROM PUBLIC;
GRANT SELECT ON offices, units, keys, certificates, pending, audit, operators,
    operator_offices, offices_v, units_v, keys_v, certificates_v, pending_v, audit_v
    TO certreg_operator, certreg_supervisor, certreg_auditor;

RESET ROLE;
