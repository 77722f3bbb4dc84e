-- functions/90_grants.sql - who may call which function, applied last by
-- every `certreg-admin db migrate` so that a function added in any file
-- above is callable by nobody until it is named here.
--
-- certreg_daemon      decide, record_use, ping: what a decision needs;
--                     decide_read: the same on a standby (65_replicas.sql);
--                     challenge_key, challenge_consume(_many): signed login;
--                     record_refusal, pending_count: key show, /metrics
-- certreg_operator    the changing functions (their rules check the office)
-- certreg_supervisor  the same; the rules let supervisors do more
-- certreg_auditor     reading helpers only
--
-- CONNECT to the database: the four group roles only (certreg_owner never
-- logs in; superusers need no grant). PostgreSQL gives every login of the
-- cluster CONNECT by default, and any session may LISTEN on and
-- pg_notify() channel certreg: a NOTIFY makes every certregd drop its whole
-- cache, and LISTEN shows the key ids of every office's changes (review
-- finding 4). Here rather than in a numbered migration because a
-- database's privileges are not in its schema: CREATE DATABASE ... TEMPLATE
-- does not copy them, nor pg_dump without --create, so a restored database
-- regains PUBLIC's CONNECT while its migrations say applied; the next
-- db migrate takes it away again. As the user running db migrate (a
-- superuser): certreg_owner does not own the database.
--
-- CREATE on schema public: PUBLIC's no more, as PostgreSQL 15 made the
-- default; a database upgraded from an older one keeps it. Whoever can
-- create there can define a function that matches a call better than
-- pg_catalog's (format()'s VARIADIC "any" loses to format(text, name)),
-- and whoever calls it by its bare name runs it: an operator's format()
-- ran as the superuser of the next db migrate (review finding 2,
-- certreg-admin and the SQL rules). So the migration resolves no name
-- through public either: the function files and migrations from 013 on
-- set search_path to certreg alone (pg_catalog is searched first anyway),
-- and the runner names pg_catalog in its own statements (admin/migrate.c).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA certreg FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decide(text, jsonb, text, boolean), record_use(text, jsonb, text),
    ping(), challenge_key(), challenge_consume(text, timestamptz, text),
    challenge_consume_many(text[], timestamptz[], text[]),
    decide_read(text, jsonb, text, boolean), record_refusal(text, jsonb, text),
    pending_count() TO certreg_daemon;
GRANT EXECUTE ON FUNCTION office_add(text, text, text, text), operator_add(text, text, text),
    operator_remove(text, text),
    unit_add(text, text, text, text), unit_set_status(text, text, text),
    key_bind(text, text, text, boolean, text, jsonb), key_suspend(text, text),
    key_resume(text, text), key_cancel(text, text)
    TO certreg_operator, certreg_supervisor;
GRANT EXECUTE ON FUNCTION key_resolve(text), audit_verify(), audit_verify_anchored(bigint, text),
    reads_all(), my_offices(), uscc_valid(text), unit_search(text, text, text),
    keys_expiring(integer)
    TO certreg_operator, certreg_supervisor, certreg_auditor;

RESET ROLE;

DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO certreg_daemon, certreg_operator,'
                   ' certreg_supervisor, certreg_auditor', current_database());
    IF to_regnamespace('public') IS NOT NULL THEN
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    END IF;
END $$;
