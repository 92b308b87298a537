package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestAuditStreamSurvivesKills: `takedownd audit stream -out F -follow` follows the log while
// cases are opened, is killed (SIGKILL) three times at arbitrary moments and started again;
// the file then holds every signed record once, in index order, byte for byte as the
// database holds it.
func TestAuditStreamSurvivesKills(t *testing.T) {
	t.Parallel() // waits on its own processes and databases more than it computes
	bin := takedowndBinary(t)
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	dbURL := e.Owner.Config().ConnString()
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	start := func(follow bool) *exec.Cmd {
		args := []string{"audit", "stream", "-database-url", dbURL, "-out", out, "-log-level", "warn"}
		if follow {
			args = append(args, "-follow", "-poll", "50ms")
		}
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	open := func(n int) {
		for i := range n {
			if _, err := e.Users["officer"].CreateCase(ctx, fmt.Sprintf("case %d", i), "opened while the stream follows"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := range 3 {
		cmd := start(true)
		open(15)
		time.Sleep(time.Duration(100+137*round) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	// Everything signed by now, then a last run to the end of the log.
	deadline := time.Now().Add(30 * time.Second)
	var size int64
	for time.Now().Before(deadline) {
		var pending int
		_ = e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_pending`).Scan(&pending)
		_, ck, err := audit.Latest(ctx, e.Owner)
		if err == nil && pending == 0 {
			size = ck.Size
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd := start(false)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var want int64
	for sc.Scan() {
		var l audit.StreamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d is not a stream line: %v: %.120q", want+1, err, sc.Text())
		}
		if l.Index != want {
			t.Fatalf("line %d holds index %d: a gap or a repeat", want+1, l.Index)
		}
		var rec []byte
		if err := e.Owner.QueryRow(ctx, `SELECT e.record FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id WHERE l.idx = $1`, l.Index).Scan(&rec); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec, l.Record) {
			t.Fatalf("index %d: the streamed record differs from the log's", l.Index)
		}
		want++
	}
	if want != size || size < 45 {
		t.Fatalf("the stream holds %d records; the log signed %d", want, size)
	}
}
