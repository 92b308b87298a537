package main

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/internal/testenv"
)

// TestNotificationSurvivesKill: `takedownd dev` is killed (SIGKILL) while its SMTP server holds
// a notification's data unanswered; started again, it sends the notification, and the mail
// server receives it exactly once.
func TestNotificationSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel() // waits on its own processes and databases more than it computes
	bin := takedowndBinary(t)
	smtp := testenv.StartSMTP(t)
	smtp.Stall(true)
	dbURL, addr, data := testdb.New(t), freeAddr(t), filepath.Join(t.TempDir(), "data")
	flags := []string{"-smtp-addr", smtp.Addr, "-smtp-tls", "none", "-notify-every", "200ms"}
	srv, pw := startDev(t, bin, data, dbURL, addr, flags...)
	ctx := context.Background()
	legal, err := client.Login(ctx, srv.url, "legal", pw["legal"])
	if err != nil {
		t.Fatal(err)
	}
	if err := legal.Do(ctx, "PUT", "/api/v1/me/notifications", map[string]any{"email": "legal@example.go.jp", "kinds": []string{"waiting"}}, nil); err != nil {
		t.Fatal(err)
	}
	off, err := client.Login(ctx, srv.url, "officer", pw["officer"])
	if err != nil {
		t.Fatal(err)
	}
	caseID, err := off.CreateCase(ctx, "botnet", "x")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "t", "legal_basis": "police_duties_act_6_2", "kind": "self_execute",
		"technique": "block_c2", "operations": []string{"block"}, "executors": []string{"u-executor"}, "rollback_plan": "x", "data_handling": "x",
		"necessity": "x", "proportionality": "x", "collateral": "x", "notification_plan": "x",
		"alternatives": []map[string]any{{"means": "ask", "outcome": "tried", "reason": "no answer"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "203.0.113.10", "location": "domestic"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := off.Act(ctx, m.ID, "submit", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-smtp.Stalled():
	case <-time.After(30 * time.Second):
		t.Fatal("the notification was not sent")
	}
	_ = srv.cmd.Process.Signal(syscall.SIGKILL)
	_ = srv.cmd.Wait()
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d messages accepted before the kill", n)
	}
	smtp.Stall(false)
	srv, _ = startDev(t, bin, data, dbURL, addr, flags...)
	defer func() { _ = srv.cmd.Process.Signal(syscall.SIGTERM); _ = srv.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for len(smtp.Messages()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // several more rounds of the notifier
	msgs := smtp.Messages()
	if len(msgs) != 1 || msgs[0].Header.Get("To") != "<legal@example.go.jp>" {
		t.Fatalf("%d messages after the restart, want 1: %v", len(msgs), smtp.Raw())
	}
}
