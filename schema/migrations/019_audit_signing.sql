-- One row that every halt and every signed batch update: a batch whose snapshot predates a
-- halt cannot commit its checkpoint after it (the second update of the row fails the batch's
-- transaction with a serialization error), so from the instant a halt is recorded nothing is
-- signed until an operator clears it.
CREATE TABLE audit_signing (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    halts bigint NOT NULL DEFAULT 0
);
INSERT INTO audit_signing DEFAULT VALUES;
