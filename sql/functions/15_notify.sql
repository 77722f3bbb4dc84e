-- functions/15_notify.sql - telling every certregd that an answer changed.
--
-- Every rule that changes what a decision answers calls notify_change()
-- in its transaction. certregd drops its cached answers on the
-- notification and, when it reads decisions from standbys, takes no answer
-- from one that has not replayed the primary's WAL write position, which
-- it asks on receipt (contract section 9). That position is past the
-- commit only once the commit record is flushed, and under
-- synchronous_commit = off (set for the database, a role or a session)
-- the notification comes first: a standby that had not replayed the change
-- could answer, and certregd cache that answer. Such a transaction
-- therefore flushes its commit locally; any other setting already does,
-- and is kept (on may also wait for a synchronous standby, local not).
--
-- Re-applied with CREATE OR REPLACE by every `certreg-admin db migrate`,
-- after the numbered migrations: this file is the current rule.
-- (docs/REGISTRY-API.md).

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

CREATE OR REPLACE FUNCTION notify_change(p_what text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('synchronous_commit') = 'off' THEN
        -- Local to the transaction, so it holds at its commit.
        PERFORM set_config('synchronous_commit', 'local', true);
    END IF;
    PERFORM pg_notify('certreg', p_what);
END $$;

-- Renewal continuity decides a pending key by the approved keys of other
-- units' certificates of its issuer and holder id (decide()), so a change
-- to such a key may change that decision: a key bound or resumed may be the
-- predecessor that was missing; a key suspended or cancelled may leave one
-- unit where two claimed the holder id, which refused; a key bound from a
-- file becomes a predecessor when certregd first records its certificate
-- (key_use_record()). Every certregd cached the pending key's
-- KEY_NOT_APPROVED under its own id, which the changed key's notification
-- does not name, and kept refusing it for up to [cache] ttl after the
-- counter had done its part. Such keys are pending, with a certificate
-- certregd recorded under the issuer and holder id of one of this key's
-- certificates (decide() records it before it looks for a predecessor);
-- each is named. As many as the pending keys of one holder: the plan is a
-- probe of certificates_key, then of certificates_holder and pending's key.
CREATE OR REPLACE FUNCTION notify_holder_pending(p_key_id text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_change(other.key_id)
       FROM (SELECT DISTINCT c2.key_id
               FROM certificates c
               JOIN certificates c2 ON c2.issuer = c.issuer AND c2.holder_id = c.holder_id
              WHERE c.key_id = p_key_id AND c.holder_id IS NOT NULL
                AND c2.key_id <> p_key_id
                AND EXISTS (SELECT FROM pending p WHERE p.key_id = c2.key_id)) other;
END $$;

RESET ROLE;
