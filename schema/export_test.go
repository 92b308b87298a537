package schema

// MigrateTo is migrateTo, for tests of an upgrade.
var MigrateTo = migrateTo
