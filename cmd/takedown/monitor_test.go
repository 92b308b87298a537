package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/internal/webhook"
	"github.com/takedown/takedown/workflows"
	"golang.org/x/mod/sumdb/note"
)

// TestMonitorFromTheCLI: `takedown audit monitor` follows a running server's log with its own
// state file; shown an older checkpoint by a proxy (a rollback) it exits 2, prints both
// checkpoints and posts a webhook whose Standard Webhooks signature the receiver verifies.
func TestMonitorFromTheCLI(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy")
	if err := os.WriteFile(policy, []byte("log "+e.D.VerifierKey+"\nquorum none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "monitor.json")
	cli := func(server string, args ...string) (string, error) {
		var out bytes.Buffer
		err := runWith(ctx, append([]string{"audit", "monitor", "-server", server}, args...), &out, strings.NewReader(""), nil)
		return out.String(), err
	}
	wait := func() {
		// Until what the case opening wrote is under a signed checkpoint.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var entries, signed int64
			_ = e.Owner.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_entries), COALESCE((SELECT max(size) FROM audit_checkpoints), 0)`).Scan(&entries, &signed)
			if entries == signed {
				return
			}
		}
	}
	if _, err := e.Users["officer"].CreateCase(ctx, "first", "x"); err != nil {
		t.Fatal(err)
	}
	wait()
	out, err := cli(e.D.URL, "-policy", policy, "-state", state)
	if err != nil || !strings.Contains(out, " OK ") {
		t.Fatalf("first look: %v\n%s", err, out)
	}
	older, _ := http.Get(e.D.URL + "/checkpoint")
	oldNote, _ := io.ReadAll(older.Body)
	older.Body.Close()
	for i := range 3 {
		if _, err := e.Users["officer"].CreateCase(ctx, "more", string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	wait()
	if out, err := cli(e.D.URL, "-policy", policy, "-state", state); err != nil || !strings.Contains(out, " OK ") {
		t.Fatalf("a grown log: %v\n%s", err, out)
	}

	// A proxy in front of the log shows the monitor the older checkpoint.
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	secret := webhook.NewSecret()
	t.Setenv("TAKEDOWN_WEBHOOK_SECRET", secret)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer receiver.Close()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			w.Write(oldNote)
			return
		}
		http.Redirect(w, r, e.D.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer proxy.Close()
	before, _ := os.ReadFile(state)
	smtp := testenv.StartSMTP(t)
	out, err = cli(proxy.URL, "-policy", policy, "-state", state, "-webhook", receiver.URL, "-mail-to", "commission@example.go.jp",
		"-smtp-addr", smtp.Addr, "-smtp-tls", "none")
	var ec *exitCode
	if !errors.As(err, &ec) || ec.code != 2 || !strings.Contains(out, "ALERT rollback") || !strings.Contains(out, "the checkpoint the log shows now") {
		t.Fatalf("a rollback: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(state); !bytes.Contains(after, []byte(strings.Split(string(before), `"grew"`)[0][:40])) {
		t.Fatal("the state moved to the rolled-back checkpoint")
	}
	if msgs := smtp.Messages(); len(msgs) != 1 || !strings.Contains(smtp.Raw()[0], "rollback") || !strings.Contains(smtp.Raw()[0], "the checkpoint the log shows now") {
		t.Fatalf("the alert mail: %d messages %q", len(msgs), smtp.Raw())
	}
	signer, _ := webhook.NewSigner(secret)
	if len(got) != 1 || signer.Verify(got[0].Header, bodies[0], time.Now(), time.Minute) != nil || !bytes.Contains(bodies[0], []byte(`"type":"takedown.log.rollback"`)) {
		t.Fatalf("the webhook: %d posts, %s", len(got), bodies)
	}

	// Following a log that does not grow: the stall is said once, not at every look.
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var follow bytes.Buffer
	if err := runWith(fctx, []string{"audit", "monitor", "-server", e.D.URL, "-policy", policy, "-state", state, "-interval", "100ms", "-stall", "1ns"}, &follow, strings.NewReader(""), nil); err != nil {
		t.Fatalf("following: %v\n%s", err, follow.String())
	}
	if n := strings.Count(follow.String(), "ALERT stall"); n != 1 {
		t.Fatalf("the stall was said %d times in 2 s of looks every 100 ms:\n%s", n, follow.String())
	}
}

// TestMonitorRefusesCarelessInput: a negative interval, a server that is no URL, and a state
// file emptied or cut are usage errors (exit 1), never an alert (2) or a first look that
// trusts whatever the log shows.
func TestMonitorRefusesCarelessInput(t *testing.T) {
	dir := t.TempDir()
	_, vkey, err := note.GenerateKey(nil, "takedown.local/audit")
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy")
	if err := os.WriteFile(policy, []byte("log "+vkey+"\nquorum none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "monitor.json")
	for _, c := range []struct {
		name, saved, says string
		args              []string
	}{
		{"negative interval", "", "must not be negative", []string{"-server", "http://127.0.0.1:1", "-interval", "-5s"}},
		{"negative stall", "", "must not be negative", []string{"-server", "http://127.0.0.1:1", "-stall", "-1h"}},
		{"no URL", "", "not an http(s) URL", []string{"-server", "htp:/bad"}},
		{"no host", "", "not an http(s) URL", []string{"-server", "https://"}},
		{"empty state", " \n", "holds no accepted checkpoint", []string{"-server", "http://127.0.0.1:1"}},
		{"state without a checkpoint", "{}", "holds no accepted checkpoint", []string{"-server", "http://127.0.0.1:1"}},
		{"state cut short", `{"checkpoint": "takedown.local/audit\n12\n`, "not a monitor's state", []string{"-server", "http://127.0.0.1:1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_ = os.Remove(state)
			if c.saved != "" {
				if err := os.WriteFile(state, []byte(c.saved), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := runWith(context.Background(), append([]string{"audit", "monitor", "-policy", policy, "-state", state}, c.args...), &out, strings.NewReader(""), nil)
			var ec *exitCode
			if err == nil || errors.As(err, &ec) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("%v (exit code %v), want a usage error saying %q\n%s", err, ec, c.says, out.String())
			}
			if b, _ := os.ReadFile(state); string(b) != c.saved {
				t.Errorf("the state file was changed to %q", b)
			}
		})
	}
	// A first look at a log that cannot be read saves nothing: the next look is a first look.
	_ = os.Remove(state)
	err = runWith(context.Background(), []string{"audit", "monitor", "-policy", policy, "-state", state, "-server", "http://127.0.0.1:1"}, io.Discard, strings.NewReader(""), nil)
	var ec *exitCode
	if !errors.As(err, &ec) || ec.code != 2 {
		t.Fatalf("an unreachable log: %v, want an alert (exit 2)", err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("a state with no accepted checkpoint was saved: %v", err)
	}
}
