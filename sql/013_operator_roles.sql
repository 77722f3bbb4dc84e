-- 013_operator_roles.sql - every counter-staff login in exactly the certreg
-- group role operators names (review finding, 2026-12: operator roles).
--
-- operator_add() granted the new role and never revoked the previous one,
-- and operator_remove() revoked only the role operators named. The rules
-- ask PostgreSQL's role membership (is_supervisor(), reads_all() in
-- sql/functions/20_access.sql), so a supervisor re-added as an operator
-- stayed a supervisor, an operator made an auditor could still change
-- units, an auditor made an operator still read every office, and a
-- removed login kept the roles it once had. The functions now keep one
-- role per login (sql/functions/40_registry.sql); this puts right the
-- memberships the old ones left: a login in operators keeps its role
-- alone, and a login whose last operator change was its removal keeps
-- none. Logins that certreg-admin never added are not touched: only
-- operator_add() and operator_remove() speak for a login here.

SET LOCAL ROLE certreg_owner;
SET LOCAL search_path = certreg;

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT l.rolname AS login, g.rolname AS grp
          FROM pg_auth_members m
          JOIN pg_roles g ON g.oid = m.roleid
          JOIN pg_roles l ON l.oid = m.member
          LEFT JOIN operators o ON o.login = l.rolname
         WHERE g.rolname IN ('certreg_operator', 'certreg_supervisor', 'certreg_auditor')
           AND CASE WHEN o.login IS NOT NULL THEN g.rolname <> 'certreg_' || o.role
                    ELSE (SELECT a.action FROM audit a
                           WHERE a.action IN ('operator_add', 'operator_remove')
                             AND a.after->>'login' = l.rolname
                           ORDER BY a.id DESC LIMIT 1) = 'operator_remove'
               END
    LOOP
        EXECUTE format('REVOKE %I FROM %I', r.grp, r.login);
    END LOOP;
END $$;

RESET ROLE;
