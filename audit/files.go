package audit

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/mod/sumdb/tlog"
)

// The largest files the verifier reads. An archive comes from someone else: whatever it
// holds, the verifier reads no more than these, and memory stays bounded.
const (
	MaxCheckpointFile = 64 << 10                       // a signed note with its cosignatures
	MaxTileFile       = EntriesPerTile * tlog.HashSize // a full hash tile
	MaxBundleFile     = EntriesPerTile * (2 + 65535)   // 256 records of at most 64 KiB
	MaxSmallFile      = 1 << 20                        // a policy, a proof, a record, the auditor's state
	MaxCompanionFile  = 64 << 20                       // a record's moved details: a botnet's target values
)

// ReadFile reads a regular file of at most max bytes. It never follows a symbolic link (an
// archive must not point outside itself), never opens a device or waits on a FIFO, and never
// reads more than max.
func ReadFile(path string, max int64) ([]byte, error) {
	return readCapped(path, max, nil)
}

// readCapped is ReadFile into buf's storage, grown as needed.
func readCapped(path string, max int64, buf []byte) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit for it", path, st.Size(), max)
	}
	if c := st.Size() + 1; int64(cap(buf)) < c { // +1: EOF is seen without growing
		buf = make([]byte, 0, c)
	}
	buf = buf[:0]
	r := io.LimitReader(f, max+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, fmt.Errorf("%s grew over the %d-byte limit for it while read", path, max)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
