-- 015_audit_head_read.sql - the audit chain's head readable by the roles
-- that read the whole log, so that `certreg-admin audit verify` can end the
-- chain it recomputes itself at the head (docs/SECURITY.md, "Review
-- findings: the audit chain checked outside the database").
--
-- 007 left audit_head to its owner: certreg.audit_verify_anchored(), a
-- SECURITY DEFINER function, read it for everyone. That function belongs
-- to certreg_owner, who may also rewrite the log, and can be replaced to
-- say "intact"; the check in the client trusts no certreg function, so it
-- reads the row as the login. The head is one entry id and one hash of the
-- chain, nothing the audit rows do not show already. Operators read only
-- their offices' audit rows and cannot verify the chain; they are not
-- given the head.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

GRANT SELECT ON audit_head TO certreg_supervisor, certreg_auditor;

RESET ROLE;
