-- functions/70_challenges.sql - signed-challenge login's two database
-- steps: the shared key a daemon loads once, and the single use of a
-- challenge (008_challenges.sql says why this shape).
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

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
CREATE OR REPLACE FUNCTION challenge_consume(p_hash text, p_expires_at timestamptz,
                                             p_attempt text)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = certreg, pg_temp AS $$
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
    IF p_expires_at <= now() THEN
        RETURN false;
    END IF;
    INSERT INTO challenges_used (hash, expires_at, attempt) VALUES (p_hash, p_expires_at, p_attempt)
    ON CONFLICT (hash) DO NOTHING;
    IF NOT FOUND THEN
        RETURN challenge_attempt_is(p_hash, p_attempt);
    END IF;
    IF random() < 1.0 / 16 THEN
        PERFORM challenge_purge();
    END IF;
    RETURN true;
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
-- One INSERT ... SELECT FROM unnest: one executor start-up for the batch;
-- the primary key decides each element as it does for a single call
-- (ON CONFLICT DO NOTHING skips a hash inserted by an earlier element of
-- the same statement too). RETURNING says which hashes this call took and
-- for which attempt; only the others are looked up, by a statement of
-- its own (challenge_attempts_of): that one takes a new snapshot, so it
-- sees the row of a concurrent call that the INSERT waited for. The purge
-- runs with probability n/16, as often per challenge as before.
CREATE OR REPLACE FUNCTION challenge_consume_many(p_hash text[], p_expires_at timestamptz[],
                                                  p_attempt text[])
    RETURNS boolean[] LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = certreg, pg_temp AS $$
DECLARE
    v_n integer := cardinality(p_hash);
    v_taken text[];
    v_attempts text[];
    v_others text[];
    v_result boolean[];
    v_inserted boolean;
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
    WITH taken AS (
        INSERT INTO challenges_used (hash, expires_at, attempt)
        SELECT h, e, a
          FROM unnest(p_hash, p_expires_at, p_attempt) WITH ORDINALITY AS u(h, e, a, i)
         WHERE length(h) = 64 AND h !~ '[^0-9a-f]' AND length(a) = 32 AND a !~ '[^0-9a-f]'
           AND e > now() AND e <= now() + interval '1 day'
         ORDER BY i
        ON CONFLICT (hash) DO NOTHING
        RETURNING hash, attempt)
    SELECT array_agg(hash), array_agg(attempt) INTO v_taken, v_attempts FROM taken;
    v_inserted := v_taken IS NOT NULL;
    -- The valid elements whose hash this call did not take.
    SELECT array_agg(DISTINCT h) INTO v_others
      FROM unnest(p_hash, p_expires_at, p_attempt) AS u(h, e, a)
     WHERE length(h) = 64 AND h !~ '[^0-9a-f]' AND length(a) = 32 AND a !~ '[^0-9a-f]'
       AND e > now() AND e <= now() + interval '1 day'
       AND (v_taken IS NULL OR h <> ALL (v_taken));
    IF v_others IS NOT NULL THEN
        SELECT v_taken || o.hashes, v_attempts || o.attempts INTO v_taken, v_attempts
          FROM challenge_attempts_of(v_others) AS o;
    END IF;
    SELECT array_agg(coalesce(u.h = ANY (v_taken)
                              AND u.a = v_attempts[array_position(v_taken, u.h)]
                              AND u.e > now() AND u.e <= now() + interval '1 day', false)
                     ORDER BY u.i)
      INTO v_result
      FROM unnest(p_hash, p_expires_at, p_attempt) WITH ORDINALITY AS u(h, e, a, i);
    IF v_inserted AND random() < v_n / 16.0 THEN
        PERFORM challenge_purge();
    END IF;
    RETURN v_result;
END $$;

-- The attempt ids that spent the challenges p_hashes (those found), for
-- challenge_consume_many's elements its INSERT did not take. Only that
-- function calls it (no grant); enable_seqscan off for the reason given
-- above challenge_consume.
CREATE OR REPLACE FUNCTION challenge_attempts_of(p_hashes text[], OUT hashes text[],
                                                 OUT attempts text[])
    LANGUAGE plpgsql SET search_path = certreg, pg_temp SET enable_seqscan = off AS $$
BEGIN
    SELECT array_agg(hash), array_agg(attempt) INTO hashes, attempts
      FROM challenges_used WHERE hash = ANY (p_hashes);
END $$;

-- Whether the challenge p_hash was spent by the attempt p_attempt (the
-- resent call of challenge_consume). Only that function calls it (no
-- grant): it reads the row of another request's challenge.
CREATE OR REPLACE FUNCTION challenge_attempt_is(p_hash text, p_attempt text)
    RETURNS boolean LANGUAGE plpgsql
    SET search_path = certreg, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_attempt text;
BEGIN
    SELECT attempt INTO v_attempt FROM challenges_used WHERE hash = p_hash;
    RETURN v_attempt IS NOT DISTINCT FROM p_attempt;
END $$;

-- Up to 256 expired rows, oldest first, through the expiry index. Called
-- by challenge_consume in one call in 16 (no grant).
CREATE OR REPLACE FUNCTION challenge_purge() RETURNS void LANGUAGE plpgsql
    SET search_path = certreg, pg_temp SET enable_seqscan = off AS $$
BEGIN
    DELETE FROM challenges_used
     WHERE hash IN (SELECT hash FROM challenges_used WHERE expires_at < now()
                     ORDER BY expires_at LIMIT 256);
END $$;

RESET ROLE;
