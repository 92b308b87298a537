-- Each entry carries an authenticator (HMAC-SHA256 under a key kept out of the database) so
-- that the sequencer signs only what the service wrote: a row INSERTed around the service has
-- none that verifies, and is refused and reported. Entries already in the log need none (the
-- signed tree covers them); apply this with the log drained (no entry waiting), since an
-- entry waiting without one would be refused.
ALTER TABLE audit_entries ADD COLUMN auth bytea;
