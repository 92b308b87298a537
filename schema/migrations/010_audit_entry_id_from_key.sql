-- An entry's ID is now derived from its idempotency key (audit.EntryID), so the primary key
-- alone refuses a second append under the same key and the key needs no index of its own.
-- Entries written before keep their random IDs: a retry, after this migration, of a change
-- committed before it would not be recognised, so apply it with no measure mid-transition.
ALTER TABLE audit_entries DROP CONSTRAINT audit_entries_key_key;
