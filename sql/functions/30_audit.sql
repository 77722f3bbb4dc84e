-- functions/30_audit.sql - the audit log: its hash, the one append path
-- (serialised on the audit_head row), the append-only triggers and the
-- verification of the chain.
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

CREATE OR REPLACE FUNCTION audit_hash(p_prev text, p_id bigint, p_at timestamptz, p_operator text,
                           p_office text, p_action text, p_key text, p_regno text,
                           p_ticket text, p_reason text, p_before jsonb, p_after jsonb)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
    -- jsonb's text form is canonical; the time as integer microseconds does
    -- not depend on the session's TimeZone.
    SELECT encode(sha256(convert_to(p_prev || jsonb_build_array(
        p_id, (extract(epoch FROM p_at) * 1000000)::bigint, p_operator, p_office, p_action,
        p_key, p_regno, p_ticket, p_reason, p_before, p_after)::text, 'UTF8')), 'hex')
$$;

-- The head's row lock is held to the caller's commit, and a caller may be a
-- psql session that changed something and left its transaction open: the
-- wait for it is bounded (lock_timeout, restored when the function returns),
-- and the refusal names whose transaction holds the head, so that it can be
-- finished or ended (docs/SECURITY.md, "Review findings: the audit chain, a
-- second look"). certregd's own statement_timeout is shorter still.
CREATE OR REPLACE FUNCTION audit_append(p_action text, p_office text, p_key text,
                                        p_regno text, p_ticket text, p_reason text,
                                        p_before jsonb, p_after jsonb)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = certreg, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    v_prev text;
    v_id bigint;
    v_hash text;
    v_at timestamptz := clock_timestamp();
BEGIN
    -- The row lock is held to commit: one writer at a time, in chain order.
    -- audit_follows_head() moves the head to the new row.
    BEGIN
        SELECT hash INTO STRICT v_prev FROM audit_head FOR UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        PERFORM audit_head_busy();
    END;
    v_id := nextval('audit_id_seq');
    v_hash := audit_hash(v_prev, v_id, v_at, session_user, p_office, p_action, p_key, p_regno,
                         p_ticket, p_reason, p_before, p_after);
    INSERT INTO audit (id, at, operator, office_code, action, key_id, registration_no, ticket,
                       reason, before, after, prev_hash, hash)
    VALUES (v_id, v_at, session_user, p_office, p_action, p_key, p_regno, p_ticket, p_reason,
            p_before, p_after, v_prev, v_hash);
END $$;

-- The refusal of an append that waited lock_timeout for the head: the login
-- and process whose transaction holds it. That is the one holding ROW
-- EXCLUSIVE on audit_head: audit_follows_head() updated the head in it, in
-- the statement that locked the row; appenders still waiting hold only ROW
-- SHARE. (The row's xmax does not say: a lock taken in a subtransaction and
-- an update by its parent make it a MultiXact.)
CREATE OR REPLACE FUNCTION audit_head_busy() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_login text;
    v_pid integer;
BEGIN
    SELECT a.usename, a.pid INTO v_login, v_pid
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database
                                                       WHERE datname = current_database())
       AND l.relation = 'audit_head'::regclass AND l.mode = 'RowExclusiveLock'
       AND l.granted AND l.pid <> pg_backend_pid()
     LIMIT 1;
    RAISE EXCEPTION USING ERRCODE = 'lock_not_available',
        MESSAGE = format('the audit log is held by an unfinished transaction of %s (process %s):'
                         ' every change waits until it ends; ask them to end it, or an'
                         ' administrator to run SELECT pg_terminate_backend(%s)',
                         coalesce(v_login, 'another session'), coalesce(v_pid::text, '?'),
                         coalesce(v_pid::text, 'PID'));
END $$;

-- Every row must follow the head, which moves to it: whatever wrote the
-- row. The chain's one line is the database's rule, not only the append
-- path's, so an older audit_append() that an upgrade finds running (a
-- counter change already inside it, the rules replaced around it: review
-- finding 2) keeps the head too, and a row chained to anything but the
-- head is a serialization failure (retry), never a fork.
CREATE OR REPLACE FUNCTION audit_follows_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_head text;
BEGIN
    SELECT hash INTO STRICT v_head FROM audit_head FOR UPDATE;
    IF NEW.prev_hash IS DISTINCT FROM v_head THEN
        RAISE EXCEPTION USING ERRCODE = '40001',
            MESSAGE = format('audit row %s does not follow the chain''s head; retry', NEW.id);
    END IF;
    UPDATE audit_head SET id = NEW.id, hash = NEW.hash;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'CR009',
        MESSAGE = 'the audit log is append-only: ' || TG_OP || ' refused';
END $$;

-- The chain row by row, then its end against the head: a removed last row
-- shows as a head no row carries. The chain alone cannot show a rewrite by
-- whoever may write the table (a superuser, or certreg_owner, which may
-- disable its triggers): they chain every row after the changed one again
-- and move the head. So an intact chain also returns its head, for people
-- to keep outside the database, and p_anchor_id/p_anchor_hash (such a head
-- kept earlier) must still be a row of it, with that hash: a rewrite of
-- any row up to the anchor changes the anchor's hash.
CREATE OR REPLACE FUNCTION audit_verify_anchored(p_anchor_id bigint, p_anchor_hash text)
    RETURNS TABLE (ok boolean, checked bigint, first_broken_id bigint, detail text,
                   head_id bigint, head_hash text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    r audit;
    v_prev text := repeat('0', 64);
    n bigint := 0;
    v_last bigint := 0;
    v_anchored boolean := p_anchor_id IS NULL
                          OR (p_anchor_id = 0 AND p_anchor_hash = repeat('0', 64));
    h audit_head;
BEGIN
    IF (p_anchor_id IS NULL) <> (p_anchor_hash IS NULL) THEN
        PERFORM refuse('CR001', 'an anchor is an entry id and its hash');
    END IF;
    FOR r IN SELECT * FROM audit ORDER BY id LOOP
        n := n + 1;
        IF r.prev_hash <> v_prev THEN
            RETURN QUERY SELECT false, n, r.id,
                format('row %s does not follow the row before it (a row was removed or altered)', r.id),
                NULL::bigint, NULL::text;
            RETURN;
        END IF;
        IF r.hash <> audit_hash(r.prev_hash, r.id, r.at, r.operator, r.office_code, r.action,
                                r.key_id, r.registration_no, r.ticket, r.reason, r.before,
                                r.after) THEN
            RETURN QUERY SELECT false, n, r.id, format('row %s was altered', r.id),
                NULL::bigint, NULL::text;
            RETURN;
        END IF;
        IF r.id = p_anchor_id THEN
            IF r.hash <> p_anchor_hash THEN
                RETURN QUERY SELECT false, n, r.id, format(
                    'row %s no longer has the hash recorded for it: the log was rewritten up to it',
                    r.id), NULL::bigint, NULL::text;
                RETURN;
            END IF;
            v_anchored := true;
        END IF;
        v_prev := r.hash;
        v_last := r.id;
    END LOOP;
    SELECT * INTO h FROM audit_head;
    IF h.hash <> v_prev THEN
        RETURN QUERY SELECT false, n, h.id,
            format('the chain ends before its head (row %s is missing)', h.id),
            NULL::bigint, NULL::text;
        RETURN;
    END IF;
    -- The head printed is the anchor people keep: it names the last row.
    IF h.id <> v_last THEN
        RETURN QUERY SELECT false, n, h.id,
            format('the head names row %s, not the last row of the chain', h.id),
            NULL::bigint, NULL::text;
        RETURN;
    END IF;
    IF NOT v_anchored THEN
        RETURN QUERY SELECT false, n, p_anchor_id, format(
            'row %s, whose hash was recorded, is missing: the log was rewritten up to it',
            p_anchor_id), NULL::bigint, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, n, NULL::bigint, format('%s rows, chain intact', n), h.id, h.hash;
END $$;

CREATE OR REPLACE FUNCTION audit_verify()
    RETURNS TABLE (ok boolean, checked bigint, first_broken_id bigint, detail text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT v.ok, v.checked, v.first_broken_id, v.detail FROM audit_verify_anchored(NULL, NULL) v
$$;

CREATE OR REPLACE TRIGGER audit_follows_head BEFORE INSERT ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_follows_head();
CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

RESET ROLE;
