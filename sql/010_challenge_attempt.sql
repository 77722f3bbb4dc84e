-- 010_challenge_attempt.sql - which request consumed a challenge.
--
-- A daemon that loses its connection to the primary while a consume is in
-- flight cannot know whether it committed, and sends it again (contract 9:
-- no failed login when a database server dies). The random attempt id of
-- the request that consumed a challenge lets that second call answer as the
-- first did, instead of calling the user's own login a reuse.
-- (Number 009 is left to the refusal records landing beside this.)

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

ALTER TABLE challenges_used
    ADD COLUMN attempt text CHECK (attempt IS NULL OR (length(attempt) = 32 AND attempt !~ '[^0-9a-f]'));

-- The two-argument form (on a database migrated before) gives way to the
-- three-argument one of functions/70_challenges.sql.
DROP FUNCTION IF EXISTS challenge_consume(text, timestamptz);

RESET ROLE;
