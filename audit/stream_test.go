package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
)

// streamIndexes reads a stream file's indexes, failing on a line that is not one.
func streamIndexes(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var l audit.StreamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%q is not a stream line: %v", sc.Text(), err)
		}
		out = append(out, l.Index)
	}
	return out
}

func requireRun(t *testing.T, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d lines, want %d", len(got), n)
	}
	for i, idx := range got {
		if idx != int64(i) {
			t.Fatalf("line %d holds index %d: a gap or a repeat", i+1, idx)
		}
	}
}

// TestStreamToFile: a stream file resumes after its last complete line, drops a line cut
// short, follows new checkpoints, and stops at a record edited in the database.
func TestStreamToFile(t *testing.T) {
	ctx := context.Background()
	db, seq, _ := newLog(t)
	appendN(t, db, 0, 300, 50)
	drain(t, seq)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if next, err := audit.StreamToFile(ctx, db, path, 0, false, time.Second); err != nil || next != 300 {
		t.Fatalf("first run: next %d, %v", next, err)
	}
	requireRun(t, streamIndexes(t, path), 300)

	// A kill in the middle of a line: the torn line goes, the stream goes on after 299.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"index":300,"record":{"v":2,"act`)
	f.Close()
	appendN(t, db, 300, 200, 50)
	drain(t, seq)
	if _, err := audit.StreamToFile(ctx, db, path, 0, false, time.Second); err != nil {
		t.Fatal(err)
	}
	requireRun(t, streamIndexes(t, path), 500)

	// Following: records signed while it runs arrive; stopping is not an error.
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := audit.StreamToFile(fctx, db, path, 0, true, 20*time.Millisecond)
		done <- err
	}()
	appendN(t, db, 500, 40, 10)
	drain(t, seq)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(streamIndexes(t, path)) == 540 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	requireRun(t, streamIndexes(t, path), 540)

	// A last line that is not the log's entry (edited, or of another log) is not resumed
	// after: the stream would skip or repeat records.
	for name, line := range map[string]string{
		"edited":      `{"index":5,"record":{}}`,
		"another log": `{"index":100000,"record":{"v":2}}`,
	} {
		bad := filepath.Join(t.TempDir(), "audit.jsonl")
		good, _ := os.ReadFile(path)
		_ = os.WriteFile(bad, append(good, line+"\n"...), 0o600)
		if _, err := audit.StreamToFile(ctx, db, bad, 0, false, time.Second); err == nil || !strings.Contains(err.Error(), "move it aside") {
			t.Errorf("%s last line: %v", name, err)
		}
		if after, _ := os.ReadFile(bad); len(after) != len(good)+len(line)+1 {
			t.Errorf("%s last line: the file was written to", name)
		}
	}

	// A file that is not a stream is not appended to.
	other := filepath.Join(t.TempDir(), "notes.txt")
	_ = os.WriteFile(other, []byte("hello\nworld\n"), 0o600)
	if _, err := audit.StreamToFile(ctx, db, other, 0, false, time.Second); err == nil || !strings.Contains(err.Error(), "not a line of the stream") {
		t.Fatalf("streaming into a file of something else: %v", err)
	}

	// An insider rewrites a record: the stream stops there, saying so.
	if _, err := db.Exec(ctx, `ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE audit_entries SET record = convert_to(replace(convert_from(record, 'UTF8'), 'test.append', 'test.altered'), 'UTF8')
		WHERE id = (SELECT entry_id FROM audit_log WHERE idx = 7)`); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	next, err := audit.Stream(ctx, db, 0, false, time.Second, &b)
	if err == nil || !strings.Contains(err.Error(), "entry 7 is not the record the log signed") || next != 7 {
		t.Fatalf("a rewritten record: next %d, %v", next, err)
	}
	if strings.Count(b.String(), "\n") != 7 {
		t.Fatalf("the stream wrote %d lines before the rewritten record", strings.Count(b.String(), "\n"))
	}
	// And with its stored leaf hash rewritten to match: the signed tree still says otherwise.
	if _, err := db.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE audit_log SET leaf_hash = sha256('\x00'::bytea || (SELECT record FROM audit_entries WHERE id = audit_log.entry_id)) WHERE idx = 7`); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Stream(ctx, db, 5, false, time.Second, io.Discard); err == nil || !errors.Is(err, audit.ErrAltered) {
		t.Fatalf("a rewritten record with its leaf hash: %v", err)
	}
}
