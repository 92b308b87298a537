-- The sequencer takes entries off its queue by queue position; each entry is queued once by the
-- statement that inserts it, so the queue needs no second index.
ALTER TABLE audit_pending DROP CONSTRAINT audit_pending_entry_id_key;
