-- gen_dataset.sql - a realistic registry for benchmarks and plan checks.
--
--   psql -v offices=16 -v units_per_office=500 -v keys=2000000 -f gen_dataset.sql
--
-- Offices OF01.., units with 12-digit registration numbers spread evenly
-- over the offices, keys spread over the units (key id = sha256 of the
-- key's number, so ids are as random as real ones), one certificate seen
-- per key, and pending registrations (one per 40 keys). Bulk data goes in
-- as the table owner, without audit rows: this is a load, not a history.
--
-- The keys' and certificates' primary keys, foreign key and indexes are
-- dropped for the load and made again after it from their own definitions
-- (pg_get_constraintdef, pg_get_indexdef), so the schema ends as migrated:
-- one sort per index instead of 2,000,000 insertions at random places, and
-- one join for the foreign key instead of 2,000,000 probes. By hand, the
-- 2,000,000-key load took 30 s this way and 68 s with the indexes in place.
\set ON_ERROR_STOP on
\if :{?offices} \else \set offices 16 \endif
\if :{?units_per_office} \else \set units_per_office 500 \endif
\if :{?keys} \else \set keys 2000000 \endif

SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
SET ROLE certreg_owner;

CREATE TEMP TABLE load_ddl AS
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname) AS drop_it,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
              pg_get_constraintdef(oid)) AS make_it
  FROM pg_constraint
 WHERE conrelid IN ('certreg.keys'::regclass, 'certreg.certificates'::regclass)
   AND contype IN ('p', 'f')
UNION ALL
SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid)
  FROM pg_index i
 WHERE indrelid IN ('certreg.keys'::regclass, 'certreg.certificates'::regclass)
   AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid
                                                 AND c.contype IN ('p', 'u', 'x'));
-- Nothing references these two tables, so the order does not matter.
SELECT drop_it FROM load_ddl \gexec

INSERT INTO certreg.offices (code, name, address, phone)
SELECT format('OF%s', lpad(o::text, 2, '0')), format('第%s管理部', o),
       format('北京市测试区%s号', o), format('010-%s', 60000000 + o)
  FROM generate_series(1, :offices) o;

INSERT INTO certreg.units (registration_no, name, office_code)
SELECT lpad((110000000000 + u)::text, 12, '0'), format('测试单位%s有限公司', u),
       format('OF%s', lpad((1 + u % :offices)::text, 2, '0'))
  FROM generate_series(1, :offices * :units_per_office) u;

INSERT INTO certreg.keys (key_id, registration_no, status, how, ticket, bound_by,
                          credit_checked)
SELECT encode(sha256(k::text::bytea), 'hex'),
       lpad((110000000000 + 1 + k % (:offices * :units_per_office))::text, 12, '0'),
       'approved', 'counter', format('BULK-%s', k), 'bulk', true
  FROM generate_series(1, :keys) k;

INSERT INTO certreg.certificates (sha256, key_id, subject, issuer, serial, not_before, not_after,
                                  source)
SELECT encode(sha256(('cert' || k)::bytea), 'hex'), encode(sha256(k::text::bytea), 'hex'),
       format('CN=key %s,O=测试单位%s有限公司', k, 1 + k % (:offices * :units_per_office)),
       'CN=certreg Test Issuing CA', to_hex(k), now() - interval '30 days',
       now() + (k % 730) * interval '1 day', 'daemon'
  FROM generate_series(1, :keys) k;

SELECT make_it FROM load_ddl \gexec

INSERT INTO certreg.pending (key_id, subject, issuer, credit_code, holder_id, attempts)
SELECT encode(sha256(('pending' || p)::bytea), 'hex'),
       format('CN=pending %s,O=待关联单位%s有限公司', p, p), 'CN=certreg Test Issuing CA',
       format('91110000%sX', lpad(p::text, 9, '0')), format('JJ%s', lpad(p::text, 9, '0')),
       1 + p % 5
  FROM generate_series(1, greatest(:keys / 40, 1)) p;

RESET ROLE;
ANALYZE certreg.offices, certreg.units, certreg.keys, certreg.certificates, certreg.pending;
