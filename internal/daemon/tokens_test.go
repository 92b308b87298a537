package daemon_test

import (
	"context"
	"errors"
	"strings"
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

// TestLoginThrottling: failed logins are audited; five for one account lock it, even against
// the right password, and say so; another account from the same address still logs in.
func TestLoginThrottling(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	pw := map[string]string{}
	for _, c := range e.D.Credentials {
		pw[c.Username] = c.Password
	}
	failures := func() int {
		var n int
		if err := e.D.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE key LIKE 'login/%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range service.LoginFailuresPerAccount {
		_, err := client.Login(ctx, e.D.URL, "legal", "guess-"+string(rune('a'+i)))
		refusedWith(t, err, 401, "")
	}
	_, err := client.Login(ctx, e.D.URL, "no-such-user", "x")
	refusedWith(t, err, 401, "")
	if n := failures(); n != service.LoginFailuresPerAccount+1 {
		t.Fatalf("%d failed logins audited, want %d", n, service.LoginFailuresPerAccount+1)
	}
	_, err = client.Login(ctx, e.D.URL, "legal", pw["legal"])
	refusedWith(t, err, 429, "")
	var ce *client.Error
	if errors.As(err, &ce) && !strings.Contains(ce.Message, "locked") {
		t.Errorf("a locked account does not say so: %s", ce.Message)
	}
	if _, err := client.Login(ctx, e.D.URL, "commander", pw["commander"]); err != nil {
		t.Fatalf("another account from the same address: %v", err)
	}
}
