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
