// Package signon is single sign-on with an OpenID Connect provider (authorization code flow
// with PKCE, state and nonce), shared by both doors: the JSON API answers a verified identity
// with an API token, the web pages with a browser session. Which one the browser asked for
// travels with the state in a short-lived cookie, so one callback URL serves both.
package signon

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
)

// Paths of the flow, as the provider and the browser see them.
const (
	LoginPath    = "/auth/oidc/login"
	CallbackPath = "/auth/oidc/callback"
	CLIKeyPath   = "/auth/oidc/cli-key" // the key `takedown login -sso` checks answers with
)

// For says which door a sign-on is for.
type For string

// The doors.
const (
	API For = "api" // an API token
	Web For = "web" // a browser session
	CLI For = "cli" // an API token for `takedown login -sso`, handed to its loopback listener
)

// Provider is the identity provider as this server uses it. Its discovery document is read at
// the first sign-on, so a provider that is down at start delays only sign-on.
type Provider struct {
	Issuer, ClientID, ClientSecret string
	// RedirectURL is this server's CallbackPath as the provider knows it (empty: the request's
	// own scheme and host, fine without a proxy in front).
	RedirectURL string
	// RolesClaim, when set, names the claim (a list of strings) whose value are the
	// account's roles; else roles are assigned locally. OrgClaim, when set, names the claim
	// that must equal the account's organisation.
	RolesClaim, OrgClaim string
	// CLIKey signs what the callback sends a command line's listener, so the command takes a
	// token from this server only, not from anyone who saw its sign-on URL (the same key on
	// every replica: derived from the append key).
	CLIKey ed25519.PrivateKey

	mu       sync.Mutex
	provider *oidc.Provider
}

// Configured reports whether single sign-on is set up.
func (o *Provider) Configured() bool { return o != nil && o.Issuer != "" && o.ClientID != "" }

var notConfigured = refusal.New(refusal.NotFound, "single sign-on is not configured here (-oidc-issuer)")

func (o *Provider) config(ctx context.Context, r *http.Request) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		p, err := oidc.NewProvider(ctx, o.Issuer)
		if err != nil {
			return nil, nil, refusal.New(refusal.Unavailable, "the identity provider %s cannot be reached or does not describe itself: try again later (%s)",
				measure.Clip(o.Issuer, measure.MaxLine), measure.Clip(err.Error(), measure.MaxLine))
		}
		o.provider = p
	}
	scopes := []string{oidc.ScopeOpenID, "profile"}
	if o.RolesClaim == "groups" {
		scopes = append(scopes, "groups")
	}
	redirect := o.RedirectURL
	if redirect == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		redirect = scheme + "://" + r.Host + CallbackPath
	}
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: redirect,
			Endpoint: o.provider.Endpoint(), Scopes: scopes},
		o.provider.Verifier(&oidc.Config{ClientID: o.ClientID}), nil
}

const cookie = "takedown_sso"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start sends the browser to the identity provider, remembering state, nonce, the PKCE
// verifier and the door in a short-lived cookie bound to this browser.
func (o *Provider) Start(w http.ResponseWriter, r *http.Request, door For) error {
	if !o.Configured() {
		return notConfigured
	}
	cfg, _, err := o.config(r.Context(), r)
	if err != nil {
		return err
	}
	if door == API && r.URL.Query().Has("cli") {
		ret, err := cliReturnOf(r.URL.Query())
		if err != nil {
			return err
		}
		door = CLI
		http.SetCookie(w, &http.Cookie{Name: cliCookie, Value: ret.encode(), Path: "/auth/oidc/",
			MaxAge: 600, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	}
	state, nonce, verifier := randomHex(16), randomHex(16), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{Name: cookie, Value: state + "." + nonce + "." + verifier + "." + string(door), Path: "/auth/oidc/",
		MaxAge: 600, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	return nil
}

// lacksClaims reports whether the ID token lacks a claim this server reads.
func (o *Provider) lacksClaims(claims map[string]any) bool {
	for _, c := range []string{"preferred_username", o.RolesClaim, o.OrgClaim} {
		if _, ok := claims[c]; c != "" && !ok {
			return true
		}
	}
	return false
}

// userInfo adds to claims those the UserInfo endpoint releases that the ID token lacks. The
// answer must be about the ID token's subject.
func (o *Provider) userInfo(ctx context.Context, tok *oauth2.Token, subject string, claims map[string]any) error {
	o.mu.Lock()
	p := o.provider
	o.mu.Unlock()
	if p == nil || p.UserInfoEndpoint() == "" {
		return errors.New("the provider has no UserInfo endpoint")
	}
	info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return err
	}
	if info.Subject != subject {
		return fmt.Errorf("UserInfo is about subject %q, the ID token about %q: ignored", measure.Clip(info.Subject, 64), measure.Clip(subject, 64))
	}
	var more map[string]any
	if err := info.Claims(&more); err != nil {
		return err
	}
	for k, v := range more {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return nil
}

// Check reads the provider's discovery document at start: an issuer that does not match the
// one the provider announces (a missing trailing slash, say) is refused now, naming both,
// rather than at the first sign-on. A provider that does not answer is only a warning:
// sign-on waits for it.
func (o *Provider) Check(ctx context.Context, log interface{ Warn(string, ...any) }) error {
	if !o.Configured() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimSuffix(o.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return fmt.Errorf("-oidc-issuer %q: %w", o.Issuer, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Warn("single sign-on: the identity provider does not answer; sign-on waits for it", "issuer", o.Issuer, "err", err)
		return nil
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc) != nil {
		log.Warn("single sign-on: no discovery document at the issuer yet", "url", url, "status", resp.StatusCode)
		return nil
	}
	if doc.Issuer != o.Issuer {
		return fmt.Errorf("-oidc-issuer %q is not the issuer the provider announces, %q: give exactly that (OpenID Connect Discovery 4.3)", o.Issuer, doc.Issuer)
	}
	return nil
}

// Door says which door the sign-on coming back to r was started for (API when unknown).
func Door(r *http.Request) For {
	if c, err := r.Cookie(cookie); err == nil && strings.Count(c.Value, ".") == 3 {
		for _, d := range []For{Web, CLI} {
			if strings.HasSuffix(c.Value, "."+string(d)) {
				return d
			}
		}
	}
	return API
}

// Finish checks the callback's state, exchanges the code, verifies the ID token and its
// nonce, and returns the identity it names. Its refusals are the client's (4xx).
func (o *Provider) Finish(w http.ResponseWriter, r *http.Request, log interface{ Warn(string, ...any) }) (service.Identity, error) {
	if !o.Configured() {
		return service.Identity{}, notConfigured
	}
	ctx := r.Context()
	q := r.URL.Query()
	c, err := r.Cookie(cookie)
	parts := []string{}
	if err == nil {
		parts = strings.SplitN(c.Value, ".", 4)
	}
	if len(parts) < 3 || q.Get("state") == "" || q.Get("state") != parts[0] {
		return service.Identity{}, refusal.New(refusal.Invalid, "this sign-on did not start here, or took over 10 minutes: start again at %s", LoginPath)
	}
	http.SetCookie(w, &http.Cookie{Name: cookie, Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		return service.Identity{}, refusal.New(refusal.Unauthenticated, "the identity provider refused the sign-on: %s", measure.Clip(e+" "+q.Get("error_description"), measure.MaxLine))
	}
	cfg, verifier, err := o.config(ctx, r)
	if err != nil {
		return service.Identity{}, err
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		log.Warn("single sign-on: code exchange failed", "err", err)
		return service.Identity{}, refusal.New(refusal.Unauthenticated, "the identity provider did not accept the sign-on code")
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, raw)
	if err != nil || idt.Nonce != parts[1] {
		log.Warn("single sign-on: ID token refused", "err", err)
		return service.Identity{}, refusal.New(refusal.Unauthenticated, "the identity provider's ID token did not verify")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return service.Identity{}, refusal.New(refusal.Unauthenticated, "the ID token's claims do not decode")
	}
	// A provider may release profile claims at its UserInfo endpoint only (OIDC Core 5.4):
	// asked there when the ID token lacks one this server reads, for the same subject.
	if o.lacksClaims(claims) {
		if err := o.userInfo(ctx, tok, idt.Subject, claims); err != nil {
			log.Warn("single sign-on: UserInfo", "err", err)
		}
	}
	id := service.Identity{Issuer: idt.Issuer, Subject: idt.Subject}
	id.Username, _ = claims["preferred_username"].(string)
	if id.Username == "" {
		return service.Identity{}, refusal.New(refusal.Unauthenticated,
			"the identity provider named no preferred_username, in the ID token or at UserInfo: its operator must release the profile scope's claims to this client")
	}
	if o.RolesClaim != "" {
		id.Roles = []string{}
		list, _ := claims[o.RolesClaim].([]any)
		for _, v := range list {
			if r, ok := v.(string); ok {
				id.Roles = append(id.Roles, r)
			}
		}
	}
	if o.OrgClaim != "" {
		id.Org, _ = claims[o.OrgClaim].(string)
		if id.Org == "" {
			return service.Identity{}, refusal.New(refusal.Unauthenticated, "the ID token has no %s claim", o.OrgClaim)
		}
	}
	return id, nil
}

// The command line's sign-on (RFC 8252's loopback redirect, with the token sealed): `takedown
// login -sso` listens on a loopback port and opens LoginPath?cli=<its URL>&key=<an HPKE public
// key>&state=<a nonce>. After the provider, the callback issues an API token, seals it to that
// key (RFC 9180: DHKEM(X25519), HKDF-SHA256, AES-256-GCM, the state bound in) and sends the
// browser to the listener with it. Only loopback URLs are accepted, so the token can go
// nowhere else, and what the browser's history keeps of it is ciphertext.
const cliCookie = "takedown_sso_cli"

var cliState = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// cliReturn is where, and sealed to what, the command line wants its token.
type cliReturn struct {
	URL   string
	Key   []byte
	State string
}

func (c cliReturn) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.URL)) + "." + base64.RawURLEncoding.EncodeToString(c.Key) + "." + c.State
}

func decodeCLIReturn(v string) (cliReturn, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return cliReturn{}, false
	}
	u, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	k, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	c := cliReturn{URL: string(u), Key: k, State: parts[2]}
	return c, err1 == nil && err2 == nil && c.check() == nil
}

func cliReturnOf(q url.Values) (cliReturn, error) {
	k, err := base64.RawURLEncoding.DecodeString(q.Get("key"))
	if err != nil {
		return cliReturn{}, refusal.New(refusal.Invalid, "cli sign-on: key must be an X25519 public key in unpadded base64url")
	}
	c := cliReturn{URL: q.Get("cli"), Key: k, State: q.Get("state")}
	return c, c.check()
}

// check accepts only what `takedown login -sso` sends: an http URL on a loopback address
// with a port (RFC 8252 7.3), a 32-byte key, a state of 16 to 64 URL-safe characters.
func (c cliReturn) check() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		u = &url.URL{}
	}
	port, perr := strconv.Atoi(u.Port())
	if err != nil || u.Scheme != "http" || u.User != nil || perr != nil || port < 1 || port > 65535 || u.RawQuery != "" || u.Fragment != "" {
		return refusal.New(refusal.Invalid, "cli sign-on: cli must be http://127.0.0.1:PORT/PATH or http://[::1]:PORT/PATH, not %q", measure.Clip(c.URL, measure.MaxLine))
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
		return refusal.New(refusal.Invalid, "cli sign-on: cli must be on a loopback address (127.0.0.1 or ::1), not %q", measure.Clip(u.Hostname(), measure.MaxLine))
	}
	kem, _, _ := client.SSOSuite()
	if _, err := kem.NewPublicKey(c.Key); err != nil {
		return refusal.New(refusal.Invalid, "cli sign-on: key must be an X25519 public key in unpadded base64url")
	}
	if !cliState.MatchString(c.State) {
		return refusal.New(refusal.Invalid, "cli sign-on: state must be 16 to 64 letters, digits, - or _")
	}
	return nil
}

// CLIKeyHandler answers the public key the command line checks the callback's answer with.
func (o *Provider) CLIKeyHandler(w http.ResponseWriter, r *http.Request) {
	if !o.Configured() || o.CLIKey == nil {
		http.Error(w, `{"error":{"status":404,"code":"not_found","message":"single sign-on is not configured here (-oidc-issuer)"}}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"key": base64.RawURLEncoding.EncodeToString(o.CLIKey.Public().(ed25519.PublicKey))})
}

// ReturnToCLI ends a command line's sign-on: it sends the browser back to the command's
// loopback listener with the token sealed to the command's key, or with the refusal's text.
// Without the command's cookie (expired, another browser) the refusal is returned instead.
func (o *Provider) ReturnToCLI(w http.ResponseWriter, r *http.Request, token any, failed error) error {
	c, err := r.Cookie(cliCookie)
	if err != nil {
		return refusal.New(refusal.Invalid, "this command-line sign-on did not start in this browser, or took over 10 minutes: run takedown login -sso again")
	}
	ret, ok := decodeCLIReturn(c.Value)
	if !ok {
		return refusal.New(refusal.Invalid, "this command-line sign-on did not start in this browser, or took over 10 minutes: run takedown login -sso again")
	}
	http.SetCookie(w, &http.Cookie{Name: cliCookie, Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	q := url.Values{"state": {ret.State}}
	if failed != nil {
		q.Set("error", measure.Clip(failed.Error(), measure.MaxLine))
	} else {
		plain, err := json.Marshal(token)
		if err != nil {
			return fmt.Errorf("encode the token for the command line: %w", err)
		}
		kem, kdf, aead := client.SSOSuite()
		pk, err := kem.NewPublicKey(ret.Key)
		if err != nil {
			return fmt.Errorf("read the command line's key: %w", err)
		}
		sealed, err := hpke.Seal(pk, kdf, aead, client.SSOInfo(ret.State), plain)
		if err != nil {
			return fmt.Errorf("seal the token for the command line: %w", err)
		}
		q.Set("sealed", base64.RawURLEncoding.EncodeToString(sealed))
	}
	if o.CLIKey != nil {
		q.Set("sig", base64.RawURLEncoding.EncodeToString(ed25519.Sign(o.CLIKey, client.SSOSigned(ret.State, ret.Key, q.Get("sealed"), q.Get("error")))))
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, ret.URL+"?"+q.Encode(), http.StatusSeeOther)
	return nil
}
