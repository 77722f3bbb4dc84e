-- 016_unit_search.sql - indexes for `certreg-admin unit list --search`: a
-- unit phones the counter and gives its name or a part of it, its credit
-- code or its registration number. certreg.unit_search()
-- (functions/40_registry.sql) looks for name ILIKE '%...%', credit_code
-- ILIKE '%...%' and registration_no LIKE '...%'; a BitmapOr of these three
-- indexes serves the whole condition (one arm without an index and the
-- table is read whole). A fragment of three characters or more reaches the
-- trigram indexes; a shorter one of a name has no trigram to look up and
-- reads the table (100,000 units: 0.2 s for an operator's search).
--
-- A trigram index on registration_no too, not a btree of text_pattern_ops:
-- the primary key cannot serve LIKE 'prefix%' under a collation other than
-- C, and a second btree on the column serves equality as well as the
-- primary key does, so the planner took it for the decision's lookup
-- (tests/test_registry_sql.py wants that to be units_pkey).
-- pg_trgm's operator class is named in the schema 001 created the
-- extension in (public, unless it existed before), not through the
-- search_path, which holds certreg alone (functions/90_grants.sql).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

DO $$
DECLARE
    trgm text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                    JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                   WHERE e.extname = 'pg_trgm');
BEGIN
    EXECUTE pg_catalog.format('CREATE INDEX units_name_trgm ON units'
                              ' USING gin (name %I.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX units_credit_trgm ON units'
                              ' USING gin (credit_code %I.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX units_regno_trgm ON units'
                              ' USING gin (registration_no %I.gin_trgm_ops)', trgm);
END $$;

RESET ROLE;
