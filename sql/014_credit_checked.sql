-- 014_credit_checked.sql - keys bound before 006_verified_facts.sql are
-- checked against the credit code at their next login, as a key bound
-- today would be (review finding 3, 2026-12).
--
-- 006 added keys.credit_checked with DEFAULT true, so every key an upgraded
-- database already held counted as checked, while key_bind() of 006 on
-- binds a key with credit_checked = false when its unit has a credit code,
-- no certificate certregd verified over the key says anything, and no
-- supervisor forced it; decide() then checks at the first verified login
-- (a mismatch is KEY_NOT_APPROVED). Before 006, key_bind() checked the
-- credit code only against the operator's JSON, or nothing at all without
-- --cert: exactly the bindings 006 distrusts. So every counter binding made
-- before 006 was applied (bound_at earlier than its record), of a unit
-- with a credit code, not forced (its last bind audit row says so), is
-- checked again at its next login, unless certregd has already verified a
-- certificate over the key that carries the unit's credit code. A key
-- whose certificates carry the unit's code passes at that login and is
-- marked checked; one that carries another code is refused and waits as a
-- pending registration, for a supervisor's forced binding. Renewals were
-- checked by decide() itself and keys bound since 006 by its rule; both
-- stay as they are.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

UPDATE keys k SET credit_checked = false
  FROM units u
 WHERE u.registration_no = k.registration_no
   AND u.credit_code IS NOT NULL
   AND k.how = 'counter'
   AND k.credit_checked
   AND k.bound_at < (SELECT applied_at FROM certreg_meta.migrations WHERE version = 6)
   AND NOT EXISTS (SELECT FROM certificates c
                    WHERE c.key_id = k.key_id AND c.source = 'daemon'
                      AND c.credit_code = u.credit_code)
   AND coalesce((SELECT (a.after->>'forced')::boolean FROM audit a
                  WHERE a.action = 'bind' AND a.key_id = k.key_id
                  ORDER BY a.id DESC LIMIT 1), false) IS NOT TRUE;

RESET ROLE;
