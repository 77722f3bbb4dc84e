-- 003_plans.sql - certificate_seen() in PL/pgSQL.
--
-- A LANGUAGE sql function that is not inlined (an INSERT never is) is
-- parsed and planned again on every call; decide() and record_use() call
-- it on every first login, where it was a third of the database's time in
-- `make bench`. PL/pgSQL keeps the plan for the session. The function is
-- now in sql/functions/50_keys.sql.

SELECT 1;
