// Package signon is single sign-on with an OpenID Connect provider (authorization code flow
// with PKCE, state and nonce), shared by both doors: the JSON API answers a verified identity
// with an API token, the web pages with a browser session. Which one the browser asked for
// travels with the state in a short-lived cookie, so one callback URL serves both.
package signon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
)

// Paths of the flow, as the provider and the browser see them.
const (
	LoginPath    = "/auth/oidc/login"
	CallbackPath = "/auth/oidc/callback"
)

// For says which door a sign-on is for.
type For string

// The doors.
const (
	API For = "api" // an API token
	Web For = "web" // a browser session
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
			return nil, nil, fmt.Errorf("discover the identity provider %s: %w", o.Issuer, err)
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
	state, nonce, verifier := randomHex(16), randomHex(16), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{Name: cookie, Value: state + "." + nonce + "." + verifier + "." + string(door), Path: "/auth/oidc/",
		MaxAge: 600, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	return nil
}

// Door says which door the sign-on coming back to r was started for (API when unknown).
func Door(r *http.Request) For {
	if c, err := r.Cookie(cookie); err == nil && strings.Count(c.Value, ".") == 3 && strings.HasSuffix(c.Value, "."+string(Web)) {
		return Web
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
	id := service.Identity{Issuer: idt.Issuer, Subject: idt.Subject}
	id.Username, _ = claims["preferred_username"].(string)
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
