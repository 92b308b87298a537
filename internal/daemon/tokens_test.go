package daemon_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestTokensExpireAndRevoke: a token lists itself, stops working at logout or at its expiry,
// and another of the same person's tokens is unaffected by the logout.
func TestTokensExpireAndRevoke(t *testing.T) {
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) { c.TokenTTL = 3 * time.Second })
	impatient(e)
	ctx := context.Background()
	pw := map[string]string{}
	for _, c := range e.D.Credentials {
		pw[c.Username] = c.Password
	}
	laptop, err := client.Login(ctx, e.D.URL, "officer", pw["officer"])
	if err != nil {
		t.Fatal(err)
	}
	phone, err := client.Login(ctx, e.D.URL, "officer", pw["officer"])
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Tokens []service.Token }
	if err := laptop.Do(ctx, "GET", "/api/v1/tokens", nil, &list); err != nil {
		t.Fatal(err)
	}
	current := 0
	for _, tok := range list.Tokens {
		if tok.Current {
			current++
		}
		if tok.Token != "" {
			t.Errorf("a token's secret is listed")
		}
	}
	if len(list.Tokens) < 2 || current != 1 {
		t.Fatalf("the officer's live tokens: %+v", list.Tokens)
	}
	if err := laptop.Do(ctx, "DELETE", "/api/v1/tokens/current", nil, nil); err != nil {
		t.Fatal(err)
	}
	refusedWith(t, laptop.Do(ctx, "GET", "/api/v1/me", nil, nil), 401, "")
	if err := phone.Do(ctx, "GET", "/api/v1/me", nil, nil); err != nil {
		t.Fatalf("logging out on one device ended another's token: %v", err)
	}
	time.Sleep(3500 * time.Millisecond)
	refusedWith(t, phone.Do(ctx, "GET", "/api/v1/me", nil, nil), 401, "")
}

// TestLoginThrottling, on a clock the test moves: failed logins are audited; five for one
// account lock it, even against the right password, and say so; tries during the lock are
// audited but do not extend it; the right password works the moment it ends; each further
// failure doubles the lock, up to its cap; another account from the same address logs in.
func TestLoginThrottling(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	pass := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) { c.Clock = clock })
	ctx := context.Background()
	pw := map[string]string{}
	for _, c := range e.D.Credentials {
		pw[c.Username] = c.Password
	}
	audited := func() int {
		var n int
		if err := e.D.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE key LIKE 'login/%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	login := func(user, password string) error { _, err := client.Login(ctx, e.D.URL, user, password); return err }
	for i := range service.LoginFailuresPerAccount {
		refusedWith(t, login("legal", "guess-"+string(rune('a'+i))), 401, "")
	}
	refusedWith(t, login("no-such-user", "x"), 401, "")
	if n := audited(); n != service.LoginFailuresPerAccount+1 {
		t.Fatalf("%d failed logins audited, want %d", n, service.LoginFailuresPerAccount+1)
	}
	locked := func(want time.Duration) {
		t.Helper()
		err := login("legal", pw["legal"])
		refusedWith(t, err, 429, "")
		var ce *client.Error
		if errors.As(err, &ce) && !strings.Contains(ce.Message, "locked") {
			t.Errorf("a locked account does not say so: %s", ce.Message)
		}
		if want > 0 && !strings.Contains(ce.Message, want.String()) {
			t.Errorf("the lock should end in %s: %s", want, ce.Message)
		}
	}
	locked(service.LoginLockBase)
	// Someone else trying during the lock does not extend it.
	for range 10 {
		pass(5 * time.Second)
		locked(0)
	}
	if n := audited(); n != service.LoginFailuresPerAccount+1+11 {
		t.Fatalf("%d logins audited, want every refused try too", n)
	}
	pass(service.LoginLockBase - 50*time.Second)
	if err := login("legal", pw["legal"]); err != nil {
		t.Fatalf("the right password the moment the lock ends: %v", err)
	}
	// A successful login starts the count again; past the limit, each failure doubles the lock.
	for i := range service.LoginFailuresPerAccount {
		refusedWith(t, login("legal", "guess-"+string(rune('a'+i))), 401, "")
	}
	locked(service.LoginLockBase)
	lock := service.LoginLockBase
	for range 8 {
		pass(lock)
		refusedWith(t, login("legal", "wrong again"), 401, "")
		lock = min(2*lock, service.LoginLockMax)
		locked(lock)
	}
	if lock != service.LoginLockMax {
		t.Fatalf("the lock grew to %s, not to its cap %s", lock, service.LoginLockMax)
	}
	if err := login("commander", pw["commander"]); err != nil {
		t.Fatalf("another account from the same address: %v", err)
	}
}
