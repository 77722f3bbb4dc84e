-- gen_audit.sql - an audit history for gen_dataset.sql's registry.
--
--   psql -v rows=300000 -v units=100000 -v offices=16 -f gen_audit.sql
--
-- rows audit entries over the last three years, oldest first: binds,
-- suspensions, unit additions and status changes of the generated units
-- and keys (key n = sha256 of n, as gen_dataset.sql makes them), each by
-- its office's clerk. Every row is chained as audit_append() chains it
-- and goes through the table's trigger (audit_follows_head), so `audit
-- verify` finds the chain intact. One transaction per 5,000 rows, and the
-- head's row vacuumed between them: each row moves the head, and in one
-- long transaction its dead versions pile up and every append reads them
-- all (300,000 rows took minutes that way instead of about a minute).
\set ON_ERROR_STOP on
\if :{?rows} \else \set rows 300000 \endif
\if :{?units} \else \set units 100000 \endif
\if :{?offices} \else \set offices 16 \endif

SET synchronous_commit = off;
-- The trigger names the head's table without its schema.
SET search_path = certreg, pg_catalog;

SELECT format($f$
DO $$
DECLARE
    v_prev text;
    v_hash text;
    v_id bigint;
    v_at timestamptz;
    u integer;
    v_regno text;
    v_office text;
    v_key text;
    v_action text;
    v_op text;
BEGIN
    FOR i IN %1$s..%2$s LOOP
        u := 1 + i %% %4$s;
        v_regno := lpad((110000000000 + u)::text, 12, '0');
        v_office := format('OF%%s', lpad((1 + u %% %5$s)::text, 2, '0'));
        v_action := CASE WHEN i %% 20 < 16 THEN 'bind' WHEN i %% 20 < 18 THEN 'unit_add'
                         WHEN i %% 20 = 18 THEN 'suspend' ELSE 'unit_status' END;
        v_key := CASE WHEN v_action IN ('bind', 'suspend')
                      THEN encode(sha256(i::text::bytea), 'hex') END;
        v_op := format('clerk_%%s', v_office);
        v_at := now() - interval '3 years' + interval '3 years' * (i::float8 / %3$s);
        SELECT hash INTO v_prev FROM certreg.audit_head;
        v_id := nextval('certreg.audit_id_seq');
        v_hash := certreg.audit_hash(v_prev, v_id, v_at, v_op, v_office, v_action, v_key,
                                     v_regno, format('T-%%s', i), NULL, NULL,
                                     jsonb_build_object('n', i));
        INSERT INTO certreg.audit (id, at, operator, office_code, action, key_id,
                                   registration_no, ticket, reason, before, after, prev_hash,
                                   hash)
        VALUES (v_id, v_at, v_op, v_office, v_action, v_key, v_regno, format('T-%%s', i), NULL,
                NULL, jsonb_build_object('n', i), v_prev, v_hash);
    END LOOP;
END $$$f$, lo, least(lo + 4999, :rows), :rows, :units, :offices),
       'VACUUM certreg.audit_head'
  FROM generate_series(1, :rows, 5000) lo \gexec

VACUUM ANALYZE certreg.audit;
