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
-- challenge_ttl is at most 3600 s), which bounds the table; each call
-- purges a few expired rows.
--
-- enable_seqscan is off inside it: PL/pgSQL plans the purge once per
-- session, and planned on a new, empty challenges_used it would scan the
-- whole table on every later call (every challenge used within
-- challenge_ttl, twice per login: the signed-login bench lost half its
-- rate to it). The purge must always take the expiry index.
CREATE OR REPLACE FUNCTION challenge_consume(p_hash text, p_expires_at timestamptz,
                                             p_attempt text)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = certreg, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_attempt text;
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
        SELECT attempt INTO v_attempt FROM challenges_used WHERE hash = p_hash;
        RETURN v_attempt IS NOT DISTINCT FROM p_attempt;
    END IF;
    DELETE FROM challenges_used
     WHERE hash IN (SELECT hash FROM challenges_used WHERE expires_at < now()
                     ORDER BY expires_at LIMIT 16);
    RETURN true;
END $$;

RESET ROLE;
