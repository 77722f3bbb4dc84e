-- 004_last_use.sql - last use written at most once a minute, and the
-- common decision in one probe.
--
-- keys.last_used_at and certificates.last_seen answer "which keys are no
-- longer used", a question of days. Written on every decision, they made
-- each login a write transaction: at the morning rush, and behind nginx's
-- auth_request on every page, the same rows got a new version many times a
-- second, for WAL and vacuum to carry. Now a login that finds them fresher
-- than a minute only reads: by hand, at 2,200 first logins a second on the
-- bench's 2,000,000-key dataset, that took about 40 % off their p50 and
-- p99. Pending registrations still count every attempt: those are what the
-- counter staff read.
--
-- decide() of an associated key, nearly every call, is now one query
-- (key, unit, office and the two last-use times) where it was four.
-- Both are in sql/functions/60_decide.sql.

SELECT 1;
