package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"

	"github.com/takedown/takedown/audit"
)

// dbFetch serves a log's public read API straight from its database.
func dbFetch(q audit.Querier) audit.Fetch {
	return func(ctx context.Context, path string) ([]byte, error) {
		if path == "checkpoint" {
			text, _, err := audit.Latest(ctx, q)
			return text, err
		}
		level, n, width, err := audit.ParseTilePath(strings.TrimPrefix(path, "tile/"))
		if err != nil {
			return nil, err
		}
		return audit.ReadTile(ctx, q, level, n, width)
	}
}

func kinds(alerts []audit.Alert) string {
	var ks []string
	for _, a := range alerts {
		ks = append(ks, a.Kind)
	}
	return strings.Join(ks, ",")
}

// TestMonitor: a monitor with its own state accepts a log that grows consistently, and
// alerts on a stalled log, a rollback, a fork made with the log's own key (at the same size
// and at a larger one), a checkpoint without the witnesses' quorum, and tiles it cannot read.
func TestMonitor(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	pol, err := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	appendN(t, db, 0, 300, 50)
	drain(t, seq)
	st, alerts := audit.Monitor(ctx, dbFetch(db), pol, audit.MonitorState{}, now, time.Hour)
	if len(alerts) > 0 || st.Checkpoint == "" {
		t.Fatalf("first look: %v", alerts)
	}
	first := st
	appendN(t, db, 300, 100, 50)
	drain(t, seq)
	now = now.Add(10 * time.Minute)
	st, alerts = audit.Monitor(ctx, dbFetch(db), pol, st, now, time.Hour)
	if len(alerts) > 0 || !strings.Contains(st.Checkpoint, "\n400\n") || !st.Grew.Equal(now) {
		t.Fatalf("a grown log: %v, state %+v", alerts, st)
	}
	grown := st

	// Stalled: the same size for over an hour.
	if _, alerts = audit.Monitor(ctx, dbFetch(db), pol, grown, now.Add(30*time.Minute), time.Hour); len(alerts) != 0 {
		t.Fatalf("half an hour without growth: %v", alerts)
	}
	st, alerts = audit.Monitor(ctx, dbFetch(db), pol, grown, now.Add(61*time.Minute), time.Hour)
	if kinds(alerts) != audit.AlertStalled {
		t.Fatalf("an hour without growth: %v", alerts)
	}

	// Rollback: the log shows its earlier checkpoint again.
	old := func(ctx context.Context, path string) ([]byte, error) {
		if path == "checkpoint" {
			return []byte(first.Checkpoint), nil
		}
		return dbFetch(db)(ctx, path)
	}
	st, alerts = audit.Monitor(ctx, old, pol, grown, now, time.Hour)
	if kinds(alerts) != audit.AlertRollback || st.Checkpoint != grown.Checkpoint || alerts[0].Saved == "" || alerts[0].Got == "" {
		t.Fatalf("a rollback: %v (state moved: %v)", alerts, st.Checkpoint != grown.Checkpoint)
	}

	// A fork: another tree, signed with the same key, shown to this monitor.
	db2, seq2, _ := newLog(t)
	seq2.Signer, seq2.Origin = seq.Signer, seq.Origin
	appendN(t, db2, 1000, 400, 100)
	drain(t, seq2)
	if _, alerts = audit.Monitor(ctx, dbFetch(db2), pol, grown, now, time.Hour); kinds(alerts) != audit.AlertFork {
		t.Fatalf("a fork at the same size: %v", alerts)
	}
	appendN(t, db2, 2000, 50, 50)
	drain(t, seq2)
	if st, alerts = audit.Monitor(ctx, dbFetch(db2), pol, grown, now, time.Hour); kinds(alerts) != audit.AlertFork || st.Checkpoint != grown.Checkpoint {
		t.Fatalf("a fork at a larger size: %v", alerts)
	}
	if !strings.Contains(alerts[0].Message, "does not extend") && !strings.Contains(alerts[0].Message, "not consistent") {
		t.Fatalf("the fork's message: %s", alerts[0].Message)
	}

	// The policy asks a witness that never cosigned.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	w, _ := torchwood.NewCosignatureSigner("witness.test", priv)
	witnessed, err := audit.ParsePolicy("log " + vkey + "\nwitness w " + w.Verifier().String() + "\nquorum w\n")
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 400, 10, 10)
	drain(t, seq)
	if st, alerts = audit.Monitor(ctx, dbFetch(db), witnessed, grown, now, time.Hour); kinds(alerts) != audit.AlertCosignature || st.Checkpoint != grown.Checkpoint {
		t.Fatalf("no cosignature: %v", alerts)
	}

	// Tiles that cannot be read; a checkpoint signed by another key.
	down := func(ctx context.Context, path string) ([]byte, error) {
		if path == "checkpoint" {
			return dbFetch(db)(ctx, path)
		}
		return nil, errors.New("503 Service Unavailable")
	}
	if _, alerts = audit.Monitor(ctx, down, pol, grown, now, time.Hour); kinds(alerts) != audit.AlertUnreachable {
		t.Fatalf("tiles unreadable: %v", alerts)
	}
	_, _, otherKey := newLog(t)
	other, _ := audit.ParsePolicy("log " + otherKey + "\nquorum none\n")
	if _, alerts = audit.Monitor(ctx, dbFetch(db), other, audit.MonitorState{}, now, time.Hour); kinds(alerts) != audit.AlertSignature {
		t.Fatalf("another key: %v", alerts)
	}
}
