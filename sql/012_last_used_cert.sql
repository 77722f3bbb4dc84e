-- 012_last_used_cert.sql - the certificate of a key's last recorded use,
-- so that a decision probes one 2,000,000-row index, not two.
--
-- known_key() (sql/functions/60_decide.sql) read the certificate's row on
-- every decision only to learn whether its last_seen was due or its facts
-- still the operator's copy. keys.last_used_cert is the sha256 of the
-- certificate certregd verified at the key's last recorded use: written
-- by key_use_record() alone, in the transaction that records that
-- certificate as seen (source 'daemon'), and no rule ever turns a daemon
-- row back into an operator's or deletes it. So a decision whose
-- certificate is the key's last_used_cert, with last use not due, has
-- nothing to write, and it knows that from the key's row alone. On the
-- bench's 2,000,000-key database the other probe, a cache miss at every
-- level of a second big index, was about half of what a decision cost
-- PostgreSQL more than on 10,000 keys (docs/PERFORMANCE-HISTORY.md).
--
-- A migration that ever turns daemon rows into operator copies again (as
-- 006_verified_facts.sql did once, before this column) must clear
-- last_used_cert with them.
--
-- No CHECK: the value is a verified certificate's sha256, which the
-- certificates row written with it checks (005_hex_checks.sql), and no
-- role but the owner may write this table.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

ALTER TABLE keys ADD COLUMN IF NOT EXISTS last_used_cert text;

RESET ROLE;
