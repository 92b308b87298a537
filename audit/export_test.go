package audit

// VerifyArchiveWithin is VerifyArchive with the workers' companion budget given, so that a
// test can send every companion through the replay's own reading.
func VerifyArchiveWithin(dir string, pol Policy, prior *Checkpoint, limit int64) (*Report, error) {
	return verifyArchive(dir, pol, prior, limit)
}
