-- 007_audit_head.sql - the audit chain's head in a row of its own, locked
-- by every append (issue 27, finding 4).
--
-- audit_append() of 002 serialised appends with an advisory lock but read
-- the previous hash with a query, which sees the caller's snapshot: in a
-- REPEATABLE READ or SERIALIZABLE transaction that snapshot predates the
-- lock, so an append under concurrency chained to a stale row and the chain
-- forked for good. The head row is read with FOR UPDATE: at READ COMMITTED
-- the lock wait ends on the newest head; at the stricter levels, a head
-- changed since the caller's snapshot is a serialization failure (SQLSTATE
-- 40001, retry the transaction), never a fork.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

CREATE TABLE audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    id   bigint NOT NULL,
    hash text NOT NULL
);
LOCK TABLE audit IN EXCLUSIVE MODE;
INSERT INTO audit_head (id, hash)
SELECT coalesce(max(id), 0),
       coalesce((SELECT hash FROM audit ORDER BY id DESC LIMIT 1), repeat('0', 64))
  FROM audit;
REVOKE ALL ON audit_head FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_append(p_action text, p_office text, p_key text,
                                        p_regno text, p_ticket text, p_reason text,
                                        p_before jsonb, p_after jsonb)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_prev text;
    v_id bigint;
    v_hash text;
    v_at timestamptz := clock_timestamp();
BEGIN
    -- The row lock is held to commit: one writer at a time, in chain order.
    SELECT hash INTO STRICT v_prev FROM audit_head FOR UPDATE;
    v_id := nextval('audit_id_seq');
    v_hash := audit_hash(v_prev, v_id, v_at, session_user, p_office, p_action, p_key, p_regno,
                         p_ticket, p_reason, p_before, p_after);
    INSERT INTO audit (id, at, operator, office_code, action, key_id, registration_no, ticket,
                       reason, before, after, prev_hash, hash)
    VALUES (v_id, v_at, session_user, p_office, p_action, p_key, p_regno, p_ticket, p_reason,
            p_before, p_after, v_prev, v_hash);
    UPDATE audit_head SET id = v_id, hash = v_hash;
END $$;

-- The chain row by row, then its end against the head: a removed last row
-- shows as a head no row carries.
CREATE OR REPLACE FUNCTION audit_verify()
    RETURNS TABLE (ok boolean, checked bigint, first_broken_id bigint, detail text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    r audit;
    v_prev text := repeat('0', 64);
    n bigint := 0;
    h audit_head;
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
    SELECT * INTO h FROM audit_head;
    IF h.hash <> v_prev THEN
        RETURN QUERY SELECT false, n, h.id,
            format('the chain ends before its head (row %s is missing)', h.id);
        RETURN;
    END IF;
    RETURN QUERY SELECT true, n, NULL::bigint, format('%s rows, chain intact', n);
END $$;

RESET ROLE;
