-- functions/62_refusals.sql - the daemon's record of certificates it
-- refused before the key association (009_refusals.sql says which and
-- why only those), for `certreg-admin key show`.
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

-- p_cert is what certregd parsed from a chain that verified up to a trust
-- anchor (the daemon's login is trusted to report that, as for decide());
-- p_outcome the certificate check that then failed. The caller sets no
-- time: first_seen and last_seen are the server's. A certificate already
-- recorded keeps its facts and its key (a SHA-256 names one certificate);
-- only the outcome and last_seen change, at most once per record_interval (the
-- session's certreg.record_interval, set by certregd) unless the
-- outcome differs, so a client retrying in a loop costs no write. Each
-- call purges a few rows not refused again for 90 days.
CREATE OR REPLACE FUNCTION record_refusal(p_key_id text, p_cert jsonb, p_outcome text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_sha256 text := p_cert->>'sha256';
BEGIN
    PERFORM require_key_id(p_key_id);
    IF p_outcome IS NULL OR p_outcome NOT IN ('CERT_EXPIRED', 'CERT_NOT_YET_VALID',
                                              'CERT_REVOKED', 'CERT_REVOCATION_UNKNOWN',
                                              'CERT_WRONG_USAGE') THEN
        PERFORM refuse('CR001', 'outcome must be a certificate refusal after a verified chain');
    END IF;
    IF v_sha256 IS NULL OR length(v_sha256) <> 64 OR v_sha256 ~ '[^0-9a-f]' THEN
        PERFORM refuse('CR001', 'certificate sha256 must be 64 lowercase hex digits');
    END IF;
    IF p_cert->>'key_id' IS DISTINCT FROM p_key_id THEN
        PERFORM refuse('CR001', 'certificate key_id must be the key id');
    END IF;
    INSERT INTO refusals AS r (sha256, key_id, outcome, subject, issuer, serial, not_before,
                               not_after)
    VALUES (v_sha256, p_key_id, p_outcome, p_cert->>'subject', p_cert->>'issuer',
            p_cert->>'serial', (p_cert->>'not_before')::timestamptz,
            (p_cert->>'not_after')::timestamptz)
    ON CONFLICT (sha256) DO UPDATE
        SET outcome = EXCLUDED.outcome, last_seen = now()
        WHERE r.key_id = EXCLUDED.key_id
          AND (r.outcome <> EXCLUDED.outcome OR last_use_due(r.last_seen));
    DELETE FROM refusals
     WHERE sha256 IN (SELECT sha256 FROM refusals WHERE last_seen < now() - interval '90 days'
                       ORDER BY last_seen LIMIT 16);
END $$;

RESET ROLE;
