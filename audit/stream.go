package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// StreamLine is one line of the log as Stream writes it, for a SIEM: the record's index in
// the log and the record itself (its canonical JSON, salt included).
type StreamLine struct {
	Index  int64           `json:"index"`
	Record json.RawMessage `json:"record"`
}

// ErrAltered marks a stream stopped at a record the signed tree does not hold.
var ErrAltered = errors.New("the database was altered")

// Stream writes the records of the signed log from index from on, one JSON line each, in
// index order: those under the newest signed checkpoint (its signature checked with the key
// history). With follow it then waits for the next checkpoints, looking every poll, until ctx
// ends (which is not an error). Each record is checked against the signed tree first (its
// leaf hash read from the tiles, which are checked against the signed root), so a record or
// a stored hash edited in the database stops the stream. It returns the next index to write.
func Stream(ctx context.Context, q Querier, from int64, follow bool, poll time.Duration, w io.Writer) (int64, error) {
	if from < 0 {
		return from, fmt.Errorf("the index to stream from is %d: it counts from 0", from)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	next := from
	for {
		ck, err := signedLatest(ctx, q)
		if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
			return next, err
		}
		if err == nil && ck.Size > next {
			hr := tlog.TileHashReader(tlog.Tree{N: ck.Size, Hash: ck.Root}, &dbTiles{ctx: ctx, q: q})
			// A tile's worth at a time: the signed leaf hashes of the range are read (and their
			// tiles checked against the signed root) once, then each record is held to its own.
			for lo := next; lo < ck.Size && err == nil; lo = next {
				hi := min(ck.Size, (lo/EntriesPerTile+1)*EntriesPerTile)
				idx := make([]int64, 0, hi-lo)
				for i := lo; i < hi; i++ {
					idx = append(idx, tlog.StoredHashIndex(0, i))
				}
				signed, rerr := hr.ReadHashes(idx)
				if rerr != nil {
					err = fmt.Errorf("the tiles do not hold entries %d to %d under the signed root (%v): %w; the stream stops here (tell an auditor)", lo, hi-1, rerr, ErrAltered)
					break
				}
				err = forEntry(ctx, q, lo, hi, func(i int64, _, record []byte) error {
					if i != next {
						return fmt.Errorf("the log has no entry %d (found %d next): %w", next, i, ErrAltered)
					}
					if tlog.RecordHash(record) != signed[i-lo] {
						return fmt.Errorf("entry %d is not the record the log signed: %w; the stream stops here (tell an auditor)", i, ErrAltered)
					}
					if _, err := bw.Write(streamLine(i, record)); err != nil {
						return err
					}
					next++
					if follow {
						return bw.Flush() // a follower sees each record as it is signed
					}
					return nil
				})
				if ferr := bw.Flush(); err == nil {
					err = ferr
				}
				if err == nil && next != hi {
					err = fmt.Errorf("the log has no entry %d: %w", next, ErrAltered)
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return next, nil
				}
				return next, err
			}
		}
		if !follow {
			return next, nil
		}
		select {
		case <-ctx.Done():
			return next, nil
		case <-time.After(poll):
		}
	}
}

// signedLatest is the newest checkpoint, its signature checked with the log's key history.
func signedLatest(ctx context.Context, q Querier) (Checkpoint, error) {
	text, _, err := Latest(ctx, q)
	if err != nil {
		return Checkpoint{}, err
	}
	rows, err := q.Query(ctx, `SELECT vkey FROM audit_keys ORDER BY first_size`)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read the key history: %w", err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return Checkpoint{}, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	ck, err := openSigned(string(text), keys)
	if err != nil {
		return ck, fmt.Errorf("the newest checkpoint is not signed by the log's keys (%v): %w", err, ErrAltered)
	}
	return ck, nil
}

// dbTiles reads hash tiles from the database for tlog's hash reader, which checks each
// against the signed root.
type dbTiles struct {
	ctx context.Context
	q   Querier
}

func (t *dbTiles) Height() int { return TileHeight }

func (t *dbTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		data, err := ReadTile(t.ctx, t.q, tile.L, tile.N, tile.W)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (t *dbTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// StreamToFile appends the log's records to a file of JSON lines, resuming after its last
// complete line: a stream killed and started again writes every record once, in order. A
// line cut short by the kill is removed first. from applies to a new or empty file only.
func StreamToFile(ctx context.Context, q Querier, path string, from int64, follow bool, poll time.Duration) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return from, err
	}
	defer f.Close()
	next, end, last, err := resumePoint(f)
	if err != nil {
		return from, fmt.Errorf("%s: %w", path, err)
	}
	if next < 0 {
		next = from
	} else {
		// The file's last line must be the log's entry as this stream writes it: a line
		// edited, or a file of another log, would have the stream skip or repeat records.
		var record []byte
		err := q.QueryRow(ctx, `SELECT e.record FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id WHERE l.idx = $1`, next-1).Scan(&record)
		if errors.Is(err, pgx.ErrNoRows) {
			return next, fmt.Errorf("%s: its last line is entry %d, which this log does not hold: the file belongs to another log; move it aside to stream afresh", path, next-1)
		}
		if err != nil {
			return next, fmt.Errorf("read entry %d: %w", next-1, err)
		}
		if want := streamLine(next-1, record); !bytes.Equal(last, want[:len(want)-1]) {
			return next, fmt.Errorf("%s: its last line is not entry %d as the log holds it: the file was edited, or belongs to another log; move it aside to stream afresh", path, next-1)
		}
	}
	if err := f.Truncate(end); err != nil {
		return next, err
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return next, err
	}
	n, err := Stream(ctx, q, next, follow, poll, syncWriter{f})
	return n, err
}

// streamLine is the line the stream writes for entry i.
func streamLine(i int64, record []byte) []byte {
	b := make([]byte, 0, len(record)+40)
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, i, 10)
	b = append(b, `,"record":`...)
	b = append(b, record...)
	return append(b, "}\n"...)
}

// syncWriter makes each flushed batch durable before the next is read.
type syncWriter struct{ f *os.File }

func (s syncWriter) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	if err == nil {
		err = s.f.Sync()
	}
	return n, err
}

// resumePoint reads a stream file's last complete line: the index after it (-1 for a file
// with none), where that line ends, and the line without its newline.
func resumePoint(f *os.File) (next, end int64, last []byte, err error) {
	st, err := f.Stat()
	if err != nil {
		return -1, 0, nil, err
	}
	size := st.Size()
	if size == 0 {
		return -1, 0, nil, nil
	}
	// The last newline and the one before it, read backwards in chunks.
	const chunk = 64 << 10
	var tail []byte
	for off := size; off > 0; {
		n := min(int64(chunk), off)
		off -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil {
			return -1, 0, nil, err
		}
		tail = append(buf, tail...)
		if i := bytes.LastIndexByte(tail, '\n'); i >= 0 && bytes.LastIndexByte(tail[:i], '\n') >= 0 {
			break
		}
	}
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 {
		return -1, 0, nil, nil // one line, cut short: start again
	}
	end = size - int64(len(tail)) + int64(i) + 1
	last = tail[bytes.LastIndexByte(tail[:i], '\n')+1 : i]
	var line StreamLine
	if err := json.Unmarshal(last, &line); err != nil || line.Record == nil {
		return -1, 0, nil, fmt.Errorf("its last line is not a line of the stream: %.80q", last)
	}
	return line.Index + 1, end, last, nil
}
