-- 002_rules.sql - the first version of every business rule.
--
-- The rules are SECURITY DEFINER functions with a fixed search_path; their
-- current bodies live in sql/functions/, re-applied by every `db migrate`
-- after the numbered migrations (docs/REGISTRY-API.md), together with the
-- audit log's append-only triggers and the grants. This version stays so
-- that databases migrated before that split line up with new ones.

SELECT 1;
