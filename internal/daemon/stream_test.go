package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/testenv"
)

// TestAuditStreamAPI: an auditor reads the signed log as JSON lines from an index and, with
// follow, receives a record signed while the answer is open; others are refused.
func TestAuditStreamAPI(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	err := u["officer"].Do(ctx, "GET", "/api/v1/audit/stream", nil, nil)
	refusedWith(t, err, 403, "need-to-know")
	err = u["auditor"].Do(ctx, "GET", "/api/v1/audit/stream?from=-1", nil, nil)
	refusedWith(t, err, 400, "from")
	// Every refused attempt is in the log, however it was malformed, repeats too.
	var before int
	count := `SELECT count(*) FROM audit_entries WHERE convert_from(record, 'UTF8') LIKE '%"action":"refused.read.log_stream"%' AND convert_from(record, 'UTF8') LIKE '%' || $1 || '%'`
	_ = e.Owner.QueryRow(ctx, count, e.IDs["auditor"]).Scan(&before)
	for _, q := range []string{"follow=2", "from=abc", "from=1e3", "follow=yes", "from=abc"} {
		err = u["auditor"].Do(ctx, "GET", "/api/v1/audit/stream?"+q, nil, nil)
		refusedWith(t, err, 400, strings.Split(q, "=")[0])
	}
	var after int
	_ = e.Owner.QueryRow(ctx, count, e.IDs["auditor"]).Scan(&after)
	if after-before != 5 {
		t.Errorf("%d of 5 refused stream requests audited", after-before)
	}

	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(fctx, "GET", e.D.URL+"/api/v1/audit/stream?from=0&follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+u["auditor"].Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		_, _ = u["officer"].CreateCase(ctx, "opened while an auditor follows", "x")
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var want int64
	for sc.Scan() {
		var l audit.StreamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Index != want {
			t.Fatalf("line %d: index %d (%v): %.300q", want+1, l.Index, err, sc.Text())
		}
		want++
		if strings.Contains(string(l.Record), "opened while an auditor follows") {
			return
		}
	}
	// Each line is sent as it is signed (the middlewares' writers are flushed through
	// http.ResponseController): the case arrives long before the request's deadline.
	t.Fatalf("the case opened while following did not arrive (%d lines, %v)", want, sc.Err())
}
