-- 003_plans.sql - certificate_seen in PL/pgSQL.
--
-- A LANGUAGE sql function that is not inlined (an INSERT never is) is
-- parsed and planned again on every call; decide() and record_use() call
-- it on every first login, where it was a third of the database's time in
-- `make bench`. PL/pgSQL keeps the plan for the session. Same statement,
-- same effect.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

CREATE OR REPLACE FUNCTION certificate_seen(p_key_id text, p_cert jsonb) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO certificates (sha256, key_id, subject, issuer, serial, holder_id, credit_code,
                              not_before, not_after)
    SELECT p_cert->>'sha256', p_key_id, p_cert->>'subject', p_cert->>'issuer',
           p_cert->>'serial', p_cert->>'holder_id', p_cert->>'credit_code',
           (p_cert->>'not_before')::timestamptz, (p_cert->>'not_after')::timestamptz
     WHERE p_cert IS NOT NULL
    ON CONFLICT (sha256) DO UPDATE SET last_seen = now();
END $$;

RESET ROLE;
