package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestActBindsTheVersionSeen: a decision from the CLI names the digest the person read. Without
// -digest, a terminal is shown the version and asked; a script is refused before anything is
// sent; a declaration of conflict says which it is.
func TestActBindsTheVersionSeen(t *testing.T) {
	const digest = "sha256:4d2c"
	var mu sync.Mutex
	var sent []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "GET" {
			json.NewEncoder(w).Encode(map[string]any{"id": "m-1", "stage": "COMMISSION_REVIEW", "version": 4, "digest": digest, "targets": 4})
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		sent = append(sent, body)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"id": "m-1", "stage": "COMMISSION_REVIEW", "version": 4})
	}))
	defer srv.Close()
	t.Setenv("TAKEDOWN_TOKEN", "token")

	yes, no := true, false
	tests := []struct {
		name   string
		args   []string
		tty    *bool
		answer string
		err    string         // "" when the action is sent
		digest any            // the digest sent
		extra  map[string]any // other fields sent
	}{
		{"a digest given", []string{"-op", "vote", "-decision", "approve", "-digest", "sha256:old"}, &no, "", "", "sha256:old", nil},
		{"a script without a digest", []string{"-op", "vote", "-decision", "approve"}, &no, "", "-digest is required", nil, nil},
		{"a terminal that confirms the version shown", []string{"-op", "vote", "-decision", "approve"}, &yes, "y\n", "", digest, nil},
		{"a terminal that does not", []string{"-op", "legal_review", "-decision", "approve", "-confirm", "all"}, &yes, "\n", "not confirmed", nil, nil},
		{"a terminal that closes", []string{"-op", "vote", "-decision", "approve"}, &yes, "", "not confirmed", nil, nil},
		{"an operation that judges no version", []string{"-op", "start_execution"}, &no, "", "", nil, nil},
		{"a conflict declared", []string{"-op", "declare_conflict", "-conflicted", "-reason", "former counsel", "-digest", digest}, &no, "", "", digest, map[string]any{"conflicted": true}},
		{"no conflict declared", []string{"-op", "declare_conflict", "-no-conflict", "-digest", digest}, &no, "", "", digest, map[string]any{"conflicted": false}},
		{"a declaration that says neither", []string{"-op", "declare_conflict", "-reason", "I advised the provider", "-digest", digest}, &no, "", "needs a choice", nil, nil},
		{"a declaration that says both", []string{"-op", "declare_conflict", "-conflicted", "-no-conflict", "-digest", digest}, &no, "", "contradict", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			sent = nil
			mu.Unlock()
			fs := flag.NewFlagSet("takedown act", flag.ContinueOnError)
			server := srv.URL
			var out bytes.Buffer
			e := &env{ctx: context.Background(), name: "act", fs: fs, args: append([]string{"-measure", "m-1"}, tt.args...), server: &server,
				out: &out, in: strings.NewReader(tt.answer), tty: tt.tty}
			err := act(e)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error saying %q", err, tt.err)
				}
				if len(sent) != 0 {
					t.Fatalf("refused, yet sent %v", sent)
				}
				return
			case err != nil:
				t.Fatal(err)
			case len(sent) != 1:
				t.Fatalf("sent %d requests, want 1", len(sent))
			}
			if sent[0]["digest"] != tt.digest {
				t.Fatalf("sent digest %v, want %v", sent[0]["digest"], tt.digest)
			}
			for k, v := range tt.extra {
				if sent[0][k] != v {
					t.Fatalf("sent %s=%v, want %v", k, sent[0][k], v)
				}
			}
		})
	}
}
