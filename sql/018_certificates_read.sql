-- 018_certificates_read.sql - a certificate is read by whoever reads its
-- key (docs/SECURITY.md, "Review findings: another office's certificates").
--
-- certificates had no row-level security: every counter login read every
-- certificate certregd recorded, city-wide, with its subject (a unit's
-- name and credit code), holder id, serial and first and last seen (when
-- that unit last logged in), although units_read and keys_read hide the
-- units and keys of other offices and refusals name neither. Now a
-- certificate is read by whoever reads every unit, by whoever reads its
-- key (keys_read, itself under units_read), and by everyone if it is the
-- one a pending registration shows (pending: every counter login reads
-- that list whole, with this certificate's facts). Not the pending key's
-- other certificates: a key bound in one office is pending too while its
-- certificate's credit code differs from its unit's, and its history is
-- that office's. Any other certificate (none arises in normal operation:
-- certregd records one only with a key bound or pending) is left to
-- supervisors and auditors.
--
-- certregd's functions run as the owner, to whom no policy applies; the
-- counter's changing functions are SECURITY DEFINER and read as the owner
-- too. Only the counter logins' reads change: certificates_v, keys_v's
-- not_after, and key expiring, which now asks keys_expiring()
-- (functions/50_keys.sql).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

ALTER TABLE certificates ENABLE ROW LEVEL SECURITY;
CREATE POLICY certificates_read ON certificates FOR SELECT
    USING ((SELECT reads_all())
           OR EXISTS (SELECT FROM keys k WHERE k.key_id = certificates.key_id)
           OR EXISTS (SELECT FROM pending p WHERE p.key_id = certificates.key_id
                                              AND p.cert_sha256 = certificates.sha256));

RESET ROLE;
