-- 007_audit_head.sql - the audit chain's head in a row of its own, locked
-- by every append (issue 27, finding 4).
--
-- audit_append() of 002 serialised appends with an advisory lock but read
-- the previous hash with a query, which sees the caller's snapshot: in a
-- REPEATABLE READ or SERIALIZABLE transaction that snapshot predates the
-- lock, so an append under concurrency chained to a stale row and the chain
-- forked for good. The head row is read with FOR UPDATE: at READ COMMITTED
-- the lock wait ends on the newest head; at the stricter levels, a head
-- changed since the caller's snapshot is a serialization failure (SQLSTATE
-- 40001, retry the transaction), never a fork. audit_append() and
-- audit_verify() are in sql/functions/30_audit.sql.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg, public;

CREATE TABLE audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    id   bigint NOT NULL,
    hash text NOT NULL
);
LOCK TABLE audit IN EXCLUSIVE MODE;
INSERT INTO audit_head (id, hash)
SELECT coalesce(max(id), 0),
       coalesce((SELECT hash FROM audit ORDER BY id DESC LIMIT 1), repeat('0', 64))
  FROM audit;
REVOKE ALL ON audit_head FROM PUBLIC;

RESET ROLE;
