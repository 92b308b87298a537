package audit

import "context"

// VerifyArchiveWithin is VerifyArchive with the workers' companion budget given, so that a
// test can send every companion through the replay's own reading.
func VerifyArchiveWithin(dir string, pol Policy, prior *Checkpoint, limit int64) (*Report, error) {
	return verifyArchive(dir, pol, prior, limit)
}

// ForEntry and ForEntryInOrder read the log's entries in index order, by index and in the
// order they lie on disk, for a test to compare.
func ForEntry(ctx context.Context, q Querier, to int64, fn func(idx int64, leaf, record []byte) error) error {
	return forEntry(ctx, q, 0, to, fn)
}

func ForEntryInOrder(ctx context.Context, q Querier, to int64, maxAhead int, fn func(idx int64, leaf, record []byte) error) error {
	return forEntryInOrder(ctx, q, to, maxAhead, fn)
}
