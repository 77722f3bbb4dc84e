-- 017_policy_initplans.sql - the clerk's reads on a city-sized registry
-- (docs/SECURITY.md, "Review findings: the clerk's commands on a
-- city-sized registry").
--
-- 001's policies called reads_all() and my_offices() (SECURITY DEFINER,
-- STABLE: a function call that PostgreSQL cannot inline) once for every
-- row a login's query read, and keys_read looked up every key's unit,
-- itself under units_read, even for a supervisor or auditor who reads
-- every unit. On 16 offices, 100,000 units, 1,000,000 keys and 300,000
-- audit rows (tests/bench/gen_dataset.sql, EXPLAIN ANALYZE, medians):
-- `unit list` took 2.3 s for an operator and 9.1 s for a supervisor
-- (0.3 s for the superuser, whom no policy applies to), `audit log` 3.5 s
-- for an operator, `office list` 1.1 s.
--
-- The same rules, with each function call a scalar subquery: an InitPlan,
-- run once per query instead of once per row. The answers cannot differ
-- within a statement: both functions read only session_user (fixed for a
-- statement), role membership and operator_offices, in the statement's
-- snapshot. keys_read first asks reads_all(): whoever reads every unit
-- reads every key, since a key's unit always exists (keys.registration_no
-- is NOT NULL REFERENCES units), so the lookup of the unit is left to
-- operators, whose rule it is.
--
-- And two indexes for `audit log --operator LOGIN` and `--since DATE`,
-- which read the whole log (300,000 rows) for a few hundred. Building
-- them holds off audit appends (every counter change) for about a
-- second per million audit rows; logins and reads do not wait.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

ALTER POLICY units_read ON units
    USING ((SELECT reads_all()) OR office_code = ANY ((SELECT my_offices())::text[]));
-- Keys follow their unit (the subquery is itself filtered by units_read).
ALTER POLICY keys_read ON keys
    USING ((SELECT reads_all())
           OR EXISTS (SELECT FROM units u WHERE u.registration_no = keys.registration_no));
ALTER POLICY audit_read ON audit
    USING ((SELECT reads_all()) OR office_code = ANY ((SELECT my_offices())::text[]));

CREATE INDEX audit_operator ON audit (operator);
CREATE INDEX audit_at ON audit (at);

RESET ROLE;
