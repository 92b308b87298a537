package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/client"
)

// TestLoginSSO: `takedown login -sso` with a browser command (curl standing in) comes back
// with the token the server sealed to it, stores it for the commands that follow, and names
// who signed on; a server that seals to another key, or sends a refusal, stores nothing.
func TestLoginSSO(t *testing.T) {
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		t.Skip("no curl to stand in for the browser")
	}
	mode := "ok"
	_, serverKey, _ := ed25519.GenerateKey(nil)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/oidc/cli-key":
			json.NewEncoder(w).Encode(map[string]string{"key": base64.RawURLEncoding.EncodeToString(serverKey.Public().(ed25519.PublicKey))})
		case "/auth/oidc/login": // what the server does once the provider has said who it is
			q := r.URL.Query()
			kem, kdf, aead := client.SSOSuite()
			key, _ := base64.RawURLEncoding.DecodeString(q.Get("key"))
			asked := key
			info := client.SSOInfo(q.Get("state"))
			if mode == "other key" {
				other, _ := kem.GenerateKey()
				key = other.PublicKey().Bytes()
			}
			pk, err := kem.NewPublicKey(key)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			sealed, _ := hpke.Seal(pk, kdf, aead, info, []byte(`{"token":"the-token"}`))
			ans := url.Values{"state": {q.Get("state")}, "sealed": {base64.RawURLEncoding.EncodeToString(sealed)}}
			if mode == "refused" {
				ans = url.Values{"state": {q.Get("state")}, "error": {"no account for stranger here"}}
			}
			signer := serverKey
			if mode == "forged" { // someone who saw the URL seals a token of their own
				signer = otherKey
			}
			ans.Set("sig", base64.RawURLEncoding.EncodeToString(ed25519.Sign(signer, client.SSOSigned(q.Get("state"), asked, ans.Get("sealed"), ans.Get("error")))))
			http.Redirect(w, r, q.Get("cli")+"?"+ans.Encode(), http.StatusSeeOther)
		case "/api/v1/me":
			if r.Header.Get("Authorization") != "Bearer the-token" {
				http.Error(w, `{"error":{"status":401,"code":"unauthenticated","message":"no"}}`, http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"username": "commander"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	login1 := func(args ...string) (string, error) {
		fs := flag.NewFlagSet("takedown login", flag.ContinueOnError)
		server := srv.URL
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := login(&env{ctx: ctx, name: "login", fs: fs, args: args, server: &server, out: &out})
		return out.String(), err
	}
	browser := "curl -sf -L -o /dev/null"
	for _, c := range []struct {
		name, mode string
		args       []string
		err        string
	}{
		{"a username with -sso", "ok", []string{"-sso", "-user", "legal", "-browser", browser}, "without -user"},
		{"a listener off the loopback", "ok", []string{"-sso", "-listen", "0.0.0.0:0", "-browser", browser}, "loopback"},
		{"a token sealed to another key", "other key", []string{"-sso", "-browser", browser}, "does not open"},
		{"a refusal", "refused", []string{"-sso", "-browser", browser}, "no account for stranger"},
		{"no browser ever comes back", "ok", []string{"-sso", "-browser", "true", "-timeout", "1s"}, "no answer from the browser"},
		{"an answer the server did not sign", "forged", []string{"-sso", "-browser", browser, "-timeout", "2s"}, "no answer from the browser"},
	} {
		mode = c.mode
		if _, err := login1(c.args...); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.err)
		}
		if _, err := os.Stat(tokenFile()); err == nil {
			t.Fatalf("%s: a token was stored", c.name)
		}
	}
	mode = "ok"
	out, err := login1("-sso", "-browser", browser)
	if err != nil || !strings.Contains(out, "logged in as commander") {
		t.Fatalf("login -sso: %q, %v", out, err)
	}
	b, err := os.ReadFile(tokenFile())
	if err != nil || strings.TrimSpace(string(b)) != "the-token" {
		t.Fatalf("the stored token: %q, %v", b, err)
	}
	if fi, _ := os.Stat(tokenFile()); fi.Mode().Perm() != 0o600 || filepath.Dir(tokenFile()) == "" {
		t.Fatalf("the token file is %v, want 0600", fi.Mode().Perm())
	}
}
