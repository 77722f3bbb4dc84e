-- 009_refusals.sql - what certregd saw of a certificate it refused before
-- any key association was looked up (issue 31): `key show --cert` said
-- "never seen" for a user who had just been refused CERT_EXPIRED.
--
-- One row per certificate (its SHA-256): the last such outcome and when.
-- Only refusals that come after the chain and its signatures verified are
-- kept (CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_REVOKED,
-- CERT_REVOCATION_UNKNOWN, CERT_WRONG_USAGE): those certificates were
-- issued by a configured CA, so nobody can mint new ones, and the table
-- grows with the CAs' certificates, not with what an internet client
-- chooses to send. CERT_UNTRUSTED, CERT_MALFORMED and NO_CERTIFICATE are
-- never recorded (anyone can make a self-signed certificate per request;
-- `certreg-admin cert check` explains those offline).
--
-- Written only by certreg.record_refusal() (sql/functions/62_refusals.sql,
-- granted to certreg_daemon alone), at most once a minute per certificate
-- unless the outcome changes; rows not refused again for 90 days are
-- purged a few at a time by the same function. Read by people through
-- refusals_v, like certificates and pending registrations (no office to
-- filter by: the key has no unit yet, or the certificate never reached
-- the association).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

CREATE TABLE refusals (
    sha256      text PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 !~ '[^0-9a-f]'),
    key_id      text NOT NULL CHECK (length(key_id) = 64 AND key_id !~ '[^0-9a-f]'),
    outcome     text NOT NULL CHECK (outcome IN ('CERT_EXPIRED', 'CERT_NOT_YET_VALID',
                                                 'CERT_REVOKED', 'CERT_REVOCATION_UNKNOWN',
                                                 'CERT_WRONG_USAGE')),
    subject     text NOT NULL CHECK (length(subject) <= 1024),
    issuer      text NOT NULL CHECK (length(issuer) <= 1024),
    serial      text NOT NULL CHECK (length(serial) <= 128),
    not_before  timestamptz NOT NULL,
    not_after   timestamptz NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refusals_key ON refusals (key_id);
CREATE INDEX refusals_last_seen ON refusals (last_seen);

CREATE VIEW refusals_v WITH (security_invoker = true) AS
    SELECT sha256, key_id, outcome, subject, issuer, serial, not_before, not_after,
           first_seen, last_seen FROM refusals;

REVOKE ALL ON refusals, refusals_v FROM PUBLIC;
GRANT SELECT ON refusals, refusals_v TO certreg_operator, certreg_supervisor, certreg_auditor;

RESET ROLE;
