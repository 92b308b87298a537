-- Reads became policy rules (read:own_org, read:named, read:submitted, read:all). A database
-- whose policy in force predates them would let nobody read anything; it gets a new version:
-- the policy in force plus the default read rules, approved by the system as version 1 was.
-- A proposal still waiting when this runs keeps its lower number: approve it again as a new
-- proposal if it should be in force. A new database has no policy yet and writes the default
-- one, reads included, at its first start.
DO $$
DECLARE
    cur integer;
    nxt integer;
BEGIN
    SELECT max(version) INTO cur FROM authz_policy_versions WHERE approved_by IS NOT NULL;
    IF cur IS NULL OR EXISTS (SELECT 1 FROM authz_rules WHERE version = cur AND op LIKE 'read:%') THEN
        RETURN;
    END IF;
    SELECT max(version) + 1 INTO nxt FROM authz_policy_versions;
    INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at)
        VALUES (nxt, 'system', 'system', 'reads become policy rules: the default read rules added to v' || cur, now());
    INSERT INTO authz_rules (version, role, op, effect)
        SELECT nxt, role, op, effect FROM authz_rules WHERE version = cur;
    INSERT INTO authz_rules (version, role, op, effect) VALUES
        (nxt, 'officer', 'read:own_org', 'allow'),
        (nxt, 'legal', 'read:own_org', 'allow'),
        (nxt, 'commander', 'read:own_org', 'allow'),
        (nxt, 'executor', 'read:named', 'allow'),
        (nxt, 'commission_secretariat', 'read:submitted', 'allow'),
        (nxt, 'commissioner', 'read:submitted', 'allow'),
        (nxt, 'commission_chair', 'read:submitted', 'allow'),
        (nxt, 'auditor', 'read:all', 'allow');
END $$;
