-- functions/65_replicas.sql - the read-only half of a decision, for a
-- daemon that reads from a streaming-replication standby (contract section
-- 9, read_conninfo).
--
-- decide_read() answers what decide() would answer without writing
-- anything, so it runs on a hot standby too. It says what decide() would
-- also have written (write_due: the daemon then replays decide() with no
-- renewal on the primary, queued while the primary is away), and when only
-- the primary can answer (primary_needed: a renewal may bind a key, which
-- cannot wait). replay_lsn is the standby's replay position read before
-- any data: every statement after it sees at least that much (plpgsql takes
-- a snapshot per statement in a VOLATILE function, READ COMMITTED), so the
-- daemon can refuse an answer from a standby that has not replayed a change
-- it was notified of. NULL on a primary.
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

-- The office to send an unassociated key's user to: that of the one active
-- unit with the certificate's credit code, if there is exactly one; a row
-- of NULL office otherwise. decide_pending() and decide_read() share it.
CREATE OR REPLACE FUNCTION pending_answer(p_cert jsonb)
    RETURNS TABLE (key_status text, registration_no text, unit_name text, unit_status text,
                   office_code text, office_name text, office_address text,
                   office_phone text, renewed_from text)
    LANGUAGE sql STABLE AS $$
    SELECT 'none'::text, NULL::text, NULL::text, NULL::text, o.code, o.name, o.address,
           o.phone, NULL::text
      FROM offices o
     WHERE o.code = (SELECT min(u.office_code) FROM units u
                      WHERE u.credit_code = p_cert->>'credit_code' AND u.status = 'active'
                     HAVING count(*) = 1)
    UNION ALL
    SELECT 'none', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
     WHERE NOT EXISTS (SELECT FROM units u
                        WHERE u.credit_code = p_cert->>'credit_code'
                          AND u.status = 'active'
                       HAVING count(*) = 1)
$$;

CREATE OR REPLACE FUNCTION decide_read(p_key_id text, p_cert jsonb, p_peer text,
                                       p_renewal boolean)
    RETURNS TABLE (key_status text, registration_no text, unit_name text, unit_status text,
                   office_code text, office_name text, office_address text,
                   office_phone text, renewed_from text, replay_lsn text,
                   primary_needed boolean, write_due boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = certreg, pg_temp AS $$
DECLARE
    v_lsn text;
    v_seen_due boolean;
    v_credit_due boolean;
    v_credit_differs boolean;
    v_use_due boolean;
BEGIN
    PERFORM require_key_id(p_key_id);
    -- First, before any statement that reads data (see the file comment).
    -- After a promotion pg_last_wal_replay_lsn() stays at the last replayed
    -- record: only a server in recovery has a replay position that matters.
    v_lsn := CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END;
    -- known_key() (60_decide.sql) is decide()'s look-up of an associated key.
    SELECT * INTO key_status, registration_no, unit_name, unit_status, office_code, office_name,
                  office_address, office_phone, v_seen_due, v_credit_due, v_credit_differs,
                  v_use_due
      FROM known_key(p_key_id, p_cert);
    IF FOUND THEN
        write_due := v_seen_due OR v_credit_due OR v_use_due;
        IF v_credit_differs THEN
            RETURN QUERY SELECT p.*, v_lsn, false, true FROM pending_answer(p_cert) p;
            RETURN;
        END IF;
        renewed_from := NULL;
        replay_lsn := v_lsn;
        primary_needed := false;
        RETURN NEXT;
        RETURN;
    END IF;
    -- Renewal continuity binds a key: only decide() on the primary may.
    -- Any earlier daemon-seen certificate of this issuer and holder id
    -- sends the decision there; decide() applies the whole rule.
    IF p_renewal AND p_cert->>'holder_id' IS NOT NULL
       AND (p_cert->>'not_after')::timestamptz > now()
       AND EXISTS (SELECT FROM certificates c
                    WHERE c.issuer = p_cert->>'issuer' AND c.holder_id = p_cert->>'holder_id'
                      AND c.source = 'daemon' AND c.key_id <> p_key_id) THEN
        RETURN QUERY SELECT 'none'::text, NULL::text, NULL::text, NULL::text, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::text, v_lsn, true, true;
        RETURN;
    END IF;
    RETURN QUERY SELECT p.*, v_lsn, false, true FROM pending_answer(p_cert) p;
END $$;

RESET ROLE;
