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

RESET ROLE;
