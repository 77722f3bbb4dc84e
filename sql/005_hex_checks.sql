-- 005_hex_checks.sql - key ids and certificate hashes checked without a
-- counted repetition.
--
-- PostgreSQL's regex engine takes about 5 µs to match '^[0-9a-f]{64}$'
-- (the {64} unrolls into a long automaton); "64 characters, none outside
-- 0-9a-f" says the same in about a tenth of that. By hand, on 2,000,000
-- SHA-256 hex strings: 10.4 s with the regex, 0.9 s with the test below,
-- over the 1.8 s of making the strings. Every insert of a key, certificate
-- or pending row pays it once per column, and every decide() once in
-- require_key_id() (sql/functions/10_checks.sql); loading the bench's 2,000,000 keys and certificates
-- took 104 s with the regex and 68 s with this.
--
-- Same rule: length() counts characters and all the allowed ones are
-- ASCII; NULL passes a CHECK either way (the columns are NOT NULL).
-- Adding a constraint checks every row under the table's lock: about 3 s
-- for 2,000,000 keys and their certificates (docs/OPERATIONS.md, Upgrade).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

ALTER TABLE keys
    DROP CONSTRAINT keys_key_id_check,
    ADD CONSTRAINT keys_key_id_check CHECK (length(key_id) = 64 AND key_id !~ '[^0-9a-f]');
ALTER TABLE certificates
    DROP CONSTRAINT certificates_sha256_check,
    ADD CONSTRAINT certificates_sha256_check
        CHECK (length(sha256) = 64 AND sha256 !~ '[^0-9a-f]'),
    DROP CONSTRAINT certificates_key_id_check,
    ADD CONSTRAINT certificates_key_id_check
        CHECK (length(key_id) = 64 AND key_id !~ '[^0-9a-f]');
ALTER TABLE pending
    DROP CONSTRAINT pending_key_id_check,
    ADD CONSTRAINT pending_key_id_check CHECK (length(key_id) = 64 AND key_id !~ '[^0-9a-f]');

RESET ROLE;
