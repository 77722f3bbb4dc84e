-- 006_verified_facts.sql - certificate facts are trusted only when certregd
-- verified them (issue 27, findings 1, 2 and 7).
--
-- Before: key_bind() took the credit code for its cross-check from the
-- certificate JSON the caller passed, and recorded that JSON as a
-- certificate "seen"; decide() then matched renewal continuity against any
-- certificate row. An operator with psql could therefore (a) skip the
-- credit-code check with made-up JSON and (b) plant an issuer and holder id
-- so that another company's future certificate renewed into the operator's
-- unit. Now:
--   * certificates.source says who reported a row: 'daemon' (certregd
--     parsed and verified the certificate: decide(), record_use()) or
--     'operator' (key bind --cert: shown, never trusted). A daemon report of
--     the same certificate replaces every fact of an operator row.
--   * key_bind() checks the credit code against daemon-verified facts only
--     (certificates and pending registrations, both written by the daemon
--     alone). A key bound before certregd ever verified one of its
--     certificates is bound with credit_checked = false, and the check runs
--     at its first verified login: a mismatch is KEY_NOT_APPROVED (and a
--     pending registration the counter sees), never OK.
--   * renewal continuity matches only predecessor certificates the daemon
--     recorded; the successor must be current, issued after the
--     predecessor, and carry no credit code other than the unit's.
--   * refusals never name a unit or office the caller may not read.
-- The functions are in sql/functions/ (20_access, 50_keys, 60_decide).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

ALTER TABLE certificates
    ADD COLUMN source text NOT NULL DEFAULT 'daemon' CHECK (source IN ('daemon', 'operator'));
-- From now on a row that does not say who reported it is not trusted.
ALTER TABLE certificates ALTER COLUMN source SET DEFAULT 'operator';
-- Rows that a counter binding brought in cannot be told from verified ones
-- any more: those a bind names are treated as operator-supplied until
-- certregd sees the certificate again (at the next login with it).
UPDATE certificates c SET source = 'operator'
 WHERE EXISTS (SELECT FROM audit a
                WHERE a.action = 'bind' AND a.after->>'certificate' = c.sha256);

-- true: the credit-code rule was applied with verified facts (or forced by a
-- supervisor, or there was nothing to compare); false: at the first login.
-- Existing keys were checked by the rule of their time; new rows say so.
ALTER TABLE keys ADD COLUMN credit_checked boolean NOT NULL DEFAULT true;
ALTER TABLE keys ALTER COLUMN credit_checked SET DEFAULT false;

CREATE OR REPLACE VIEW certificates_v WITH (security_invoker = true) AS
    SELECT sha256, key_id, subject, issuer, serial, holder_id, credit_code, not_before,
           not_after, first_seen, last_seen, source FROM certificates;
CREATE OR REPLACE VIEW keys_v WITH (security_invoker = true) AS
    SELECT k.key_id, k.registration_no, u.name AS unit_name, u.office_code, k.status, k.how,
           k.predecessor, k.ticket, k.bound_at, k.bound_by, k.status_reason, k.updated_at,
           k.last_used_at,
           (SELECT max(c.not_after) FROM certificates c WHERE c.key_id = k.key_id) AS not_after,
           k.credit_checked
      FROM keys k JOIN units u ON u.registration_no = k.registration_no;

RESET ROLE;
