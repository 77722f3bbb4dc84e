-- functions/70_challenges.sql - signed-challenge login's two database
-- steps: the shared key a daemon loads once, and the single use of a
-- challenge (008_challenges.sql says why this shape).
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

-- The daemon's copy of the challenge key (hex). Only certreg_daemon may
-- read it: whoever holds it can make challenges every daemon accepts.
CREATE OR REPLACE FUNCTION challenge_key() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
    SELECT encode(key, 'hex') FROM challenge_key
$$;

-- true for the call that consumes a challenge (its SHA-256), and for that
-- same request's attempt id again (a call resent after a lost connection);
-- false for every other call and for a challenge already expired. A
-- challenge cannot be made to live longer than a day (the daemon's
-- challenge_ttl is at most 3600 s), which bounds the table.
--
-- It runs once per signed login, so it does the least a single use needs:
-- the INSERT, whose primary key decides (the conflict check takes the
-- unique index whatever the plan). What can wait is done elsewhere:
-- - the purge of expired rows runs in one call in 16 (random(), which no
--   caller can steer), 256 rows at most, so on average 16 a call as
--   before, and the table stays bounded by the challenges used within a
--   challenge_ttl; its executor start-up and plan were half the cost when
--   it ran on every call;
-- - the look-up of a resent attempt only on a conflict.
-- Both of those scan challenges_used and keep enable_seqscan off in
-- functions of their own: PL/pgSQL plans a statement once per session,
-- and planned on a new, empty challenges_used it would scan the whole
-- table on every later call (the signed-login bench lost half its rate to
-- it). This function sets nothing but search_path: a SET clause saves and
-- restores the setting on every call (8 % of its cost).
--
-- Expiry is the daemons' clock, not this one: a challenge carries the
-- expiry its daemon set by its own clock, and that daemon and the one that
-- checks it refuse it once expired by theirs (common/challenge.c), to the
-- second. The database only has to keep the spent row for as long as a
-- daemon could still take the challenge, and it compares with its own
-- clock, which may be ahead of theirs: compared as it was, a database two
-- minutes ahead with challenge_ttl = 120 took no challenge at all (every
-- signed login CHALLENGE_INVALID, "already used"). So each comparison
-- here is with the expiry plus five minutes, the skew of the database's
-- clock ahead of a daemon's that is tolerated (docs/OPERATIONS.md, "Time"):
-- taken, kept and purged by one rule, single use holds whatever the skew;
-- beyond it signed logins fail, never succeed twice.
--
-- The answer is true only while the clock read after the INSERT is before
-- the expiry (plus the five minutes). The purge deletes a row once it expired by the clock of a
-- transaction begun after the expiry; a consume begun before it (its
-- now() check passed) whose INSERT ran only after that purge (it waited
-- on a row of a racing batch, or stalled) found the way free and
-- inserted the spent challenge again, true: a replayed challenge and
-- signature logged in a second time. Such an insert ends after the purge,
-- so after the expiry; so does the look-up of its attempt id by a resent
-- call, which waits for or follows it.
CREATE OR REPLACE FUNCTION challenge_consume(p_hash text, p_expires_at timestamptz,
                                             p_attempt text)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = certreg, pg_temp AS $$
DECLARE
    v_live boolean;
BEGIN
    IF p_hash IS NULL OR length(p_hash) <> 64 OR p_hash ~ '[^0-9a-f]' THEN
        PERFORM refuse('CR001', 'challenge hash must be 64 lowercase hex digits');
    END IF;
    IF p_attempt IS NULL OR length(p_attempt) <> 32 OR p_attempt ~ '[^0-9a-f]' THEN
        PERFORM refuse('CR001', 'attempt id must be 32 lowercase hex digits');
    END IF;
    IF p_expires_at IS NULL OR p_expires_at > now() + interval '1 day' THEN
        PERFORM refuse('CR001', 'challenge expiry must be within a day');
    END IF;
    IF p_expires_at + interval '5 minutes' <= now() THEN
        RETURN false;
    END IF;
    INSERT INTO challenges_used (hash, expires_at, attempt) VALUES (p_hash, p_expires_at, p_attempt)
    ON CONFLICT (hash) DO NOTHING;
    v_live := p_expires_at + interval '5 minutes' > clock_timestamp();
    IF NOT FOUND THEN
        RETURN v_live AND challenge_attempt_is(p_hash, p_attempt);
    END IF;
    IF random() < 1.0 / 16 THEN
        PERFORM challenge_purge();
    END IF;
    RETURN v_live;
END $$;

-- The consumes a daemon has waiting, in one call: one statement, one
-- transaction and one commit for all of them (issue 29: the round trip,
-- executor start-up and commit of each single call were most of what a
-- signed login cost the database). Element i answers as
-- challenge_consume(p_hash[i], p_expires_at[i], p_attempt[i]) would, in
-- order, with two differences that keep one element from failing the
-- others: an element challenge_consume would refuse (a malformed hash or
-- attempt id, a NULL, an expiry more than a day ahead) gets false and
-- changes nothing, and so does an expired one. Two elements with one hash
-- are one challenge: the first in the array takes it, the second gets
-- true only with the same attempt id (the same request sent twice).
-- Refused as a whole, changing nothing: NULL arrays, arrays of other
-- lengths or of more than one dimension, more than 256 elements (the
-- daemon sends at most 64).
--
-- One INSERT ... SELECT FROM unnest for the batch: one executor start-up,
-- and the primary key decides each element as for a single call (ON
-- CONFLICT DO NOTHING also skips a hash an earlier element of the same
-- statement inserted). The rows go in in hash order: two calls racing for
-- some of the same challenges then wait for each other's rows in the same
-- order, never in a circle (in array order they deadlocked, and one whole
-- batch failed); elements with one hash keep their array order. When it
-- inserted one row an element, every element took its challenge: all
-- true, the usual case, which needs nothing more. Otherwise (an element refused, a conflict: a challenge spent before or
-- by a concurrent call the INSERT waited for, or two elements with one
-- hash) each valid element is looked up by challenge_attempt_is, a
-- statement of its own and so a snapshot that sees a concurrent call's
-- row and this call's own. An element is true only while the clock read
-- after the INSERT is before its expiry, as for challenge_consume (which
-- says why). The purge runs with probability n/16: as often per challenge
-- as before.
CREATE OR REPLACE FUNCTION challenge_consume_many(p_hash text[], p_expires_at timestamptz[],
                                                  p_attempt text[])
    RETURNS boolean[] LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = certreg, pg_temp AS $$
DECLARE
    v_n integer := cardinality(p_hash);
    v_taken integer;
    v_now timestamptz;
    v_result boolean[];
BEGIN
    IF p_hash IS NULL OR p_expires_at IS NULL OR p_attempt IS NULL THEN
        PERFORM refuse('CR001', 'hashes, expiries and attempt ids are required');
    END IF;
    IF coalesce(array_ndims(p_hash), 1) <> 1 OR coalesce(array_ndims(p_expires_at), 1) <> 1
       OR coalesce(array_ndims(p_attempt), 1) <> 1
       OR cardinality(p_expires_at) <> v_n OR cardinality(p_attempt) <> v_n THEN
        PERFORM refuse('CR001', 'hashes, expiries and attempt ids must be lists of one length');
    END IF;
    IF v_n > 256 THEN
        PERFORM refuse('CR001', 'at most 256 challenges a call');
    END IF;
    IF v_n = 0 THEN
        RETURN '{}';
    END IF;
    INSERT INTO challenges_used (hash, expires_at, attempt)
    SELECT h, e, a
      FROM unnest(p_hash, p_expires_at, p_attempt) WITH ORDINALITY AS u(h, e, a, i)
     WHERE challenge_element_ok(h, e, a)
     ORDER BY h COLLATE "C", i
    ON CONFLICT (hash) DO NOTHING;
    GET DIAGNOSTICS v_taken = ROW_COUNT;
    -- The clock less the five minutes challenge_consume allows for.
    v_now := clock_timestamp() - interval '5 minutes';
    IF v_taken = v_n AND v_now < ALL (p_expires_at) THEN
        v_result := array_fill(true, ARRAY[v_n]);
    ELSE
        v_result := array_fill(false, ARRAY[v_n]);
        FOR i IN 1 .. v_n LOOP
            IF challenge_element_ok(p_hash[i], p_expires_at[i], p_attempt[i])
               AND p_expires_at[i] > v_now THEN
                v_result[i] := challenge_attempt_is(p_hash[i], p_attempt[i]);
            END IF;
        END LOOP;
    END IF;
    IF random() < v_n / 16.0 THEN
        PERFORM challenge_purge();
    END IF;
    RETURN v_result;
END $$;

-- Whether one element of challenge_consume_many may be spent: the checks
-- challenge_consume refuses on, and not expired (by five minutes). An SQL expression, which
-- the planner inlines into the caller's cached plan (no grant).
CREATE OR REPLACE FUNCTION challenge_element_ok(p_hash text, p_expires_at timestamptz,
                                                p_attempt text)
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(length(p_hash) = 64 AND p_hash !~ '[^0-9a-f]'
                    AND length(p_attempt) = 32 AND p_attempt !~ '[^0-9a-f]'
                    AND p_expires_at + interval '5 minutes' > now()
                    AND p_expires_at <= now() + interval '1 day', false)
$$;

-- Whether the challenge p_hash was spent by the attempt p_attempt (the
-- resent call of challenge_consume, or of an element of
-- challenge_consume_many). Only those functions call it (no grant): it
-- reads the row of another request's challenge.
CREATE OR REPLACE FUNCTION challenge_attempt_is(p_hash text, p_attempt text)
    RETURNS boolean LANGUAGE plpgsql
    SET search_path = certreg, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_attempt text;
BEGIN
    SELECT attempt INTO v_attempt FROM challenges_used WHERE hash = p_hash;
    RETURN v_attempt IS NOT DISTINCT FROM p_attempt;
END $$;

-- Up to 256 rows expired five minutes ago (challenge_consume says why),
-- oldest first, through the expiry index. Called
-- by challenge_consume in one call in 16 (no grant).
CREATE OR REPLACE FUNCTION challenge_purge() RETURNS void LANGUAGE plpgsql
    SET search_path = certreg, pg_temp SET enable_seqscan = off AS $$
BEGIN
    DELETE FROM challenges_used
     WHERE hash IN (SELECT hash FROM challenges_used
                     WHERE expires_at < now() - interval '5 minutes'
                     ORDER BY expires_at LIMIT 256);
END $$;

RESET ROLE;
