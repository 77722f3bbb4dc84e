-- 011_challenge_consume_cost.sql - what spending a challenge costs the
-- database, once per signed login (issue 29's signed-login rows).
--
-- The CHECK constraints of challenges_used go: PostgreSQL 15 reads a
-- table's CHECK expressions back from their stored text, plans and
-- compiles them for every INSERT statement (ExecRelCheck), which was 40 %
-- of certreg.challenge_consume()'s instructions (91,000 of 235,000 a
-- call). The table is written by that function alone (no role but its
-- owner holds a privilege on it, 008_challenges.sql), and the function
-- refuses a hash or attempt id that is not lowercase hex of the right
-- length before it inserts: the same rule, checked once.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

ALTER TABLE challenges_used DROP CONSTRAINT IF EXISTS challenges_used_hash_check;
ALTER TABLE challenges_used DROP CONSTRAINT IF EXISTS challenges_used_attempt_check;

RESET ROLE;
