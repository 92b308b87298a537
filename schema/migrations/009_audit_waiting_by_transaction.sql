-- The sequencer finds waiting entries by the transaction that wrote them rather than through a
-- queue table: an append writes one row and three index entries instead of two rows and four,
-- and the sequencer deletes nothing. pg_current_xact_id() is the top-level transaction's id,
-- inside a savepoint too, and a snapshot says which of those transactions have ended.
--
-- Entries already in the log get transaction 0; those still queued get this migration's, so
-- the sequencer's first look (transactions from 1 on) finds exactly them.
ALTER TABLE audit_entries ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
ALTER TABLE audit_entries ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_no_update;
UPDATE audit_entries SET tx = pg_current_xact_id() WHERE id IN (SELECT entry_id FROM audit_pending);
ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_update;
CREATE INDEX audit_entries_tx ON audit_entries (tx, id);

-- With each checkpoint, where the entries not yet in the log can be: written by a transaction
-- in waiting, or after (next_tx, next_id) in that order. A sequencer taking the lead starts
-- from the newest.
ALTER TABLE audit_checkpoints ADD COLUMN next_tx xid8, ADD COLUMN next_id text, ADD COLUMN waiting xid8[];

DROP TABLE audit_pending;
