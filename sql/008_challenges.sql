-- 008_challenges.sql - what signed-challenge login keeps (contract section
-- 8): the key every daemon makes and checks challenges with, and the
-- challenges already used.
--
-- Issuing a challenge writes nothing (common/challenge.h): it carries its
-- expiry and an HMAC under challenge_key. Consuming one inserts its SHA-256
-- into challenges_used, whose primary key makes a second use fail on every
-- daemon and across restarts; rows are purged once expired, so the table
-- holds at most the challenges used within one challenge_ttl.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

CREATE TABLE challenge_key (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    key        bytea NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO challenge_key (key) VALUES (public.gen_random_bytes(32));

CREATE TABLE challenges_used (
    hash       text PRIMARY KEY CHECK (length(hash) = 64 AND hash !~ '[^0-9a-f]'),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX challenges_used_expiry ON challenges_used (expires_at);

REVOKE ALL ON challenge_key, challenges_used FROM PUBLIC;

RESET ROLE;
