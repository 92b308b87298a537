package api

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
	"github.com/takedown/takedown/ui"
)

// SSO is single sign-on with an OpenID Connect provider (authorization code flow with PKCE,
// state and nonce). The provider's discovery document is read at the first login, so a
// provider that is down at start delays only sign-on.
type SSO struct {
	Issuer, ClientID, ClientSecret string
	// RedirectURL is this server's /auth/oidc/callback as the provider knows it (empty: the
	// request's own scheme and host, fine without a proxy in front).
	RedirectURL string
	// RolesClaim, when set, names the claim (a list of strings) whose value are the
	// account's roles; else roles are assigned locally. OrgClaim, when set, names the claim
	// that must equal the account's organisation.
	RolesClaim, OrgClaim string

	mu       sync.Mutex
	provider *oidc.Provider
}

// Configured reports whether single sign-on is set up.
func (o *SSO) Configured() bool { return o != nil && o.Issuer != "" && o.ClientID != "" }

func (o *SSO) config(ctx context.Context, r *http.Request) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
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
		redirect = scheme + "://" + r.Host + "/auth/oidc/callback"
	}
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: redirect,
			Endpoint: o.provider.Endpoint(), Scopes: scopes},
		o.provider.Verifier(&oidc.Config{ClientID: o.ClientID}), nil
}

const ssoCookie = "takedown_sso"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ssoLogin sends the browser to the identity provider, remembering state, nonce and the PKCE
// verifier in a short-lived cookie bound to this browser.
func (s *Server) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if !s.SSO.Configured() {
		s.fail(w, r, refusal.New(refusal.NotFound, "single sign-on is not configured here (-oidc-issuer)"))
		return
	}
	cfg, _, err := s.SSO.config(r.Context(), r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	state, nonce, verifier := randomHex(16), randomHex(16), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: state + "." + nonce + "." + verifier, Path: "/auth/oidc/",
		MaxAge: 600, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// ssoCallback finishes the sign-on: it checks state, exchanges the code, verifies the ID
// token and its nonce, and answers with an API token for the account.
func (s *Server) ssoCallback(w http.ResponseWriter, r *http.Request) {
	if !s.SSO.Configured() {
		s.fail(w, r, refusal.New(refusal.NotFound, "single sign-on is not configured here (-oidc-issuer)"))
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	c, err := r.Cookie(ssoCookie)
	parts := []string{}
	if err == nil {
		parts = strings.SplitN(c.Value, ".", 3)
	}
	if len(parts) != 3 || q.Get("state") == "" || q.Get("state") != parts[0] {
		s.fail(w, r, refusal.New(refusal.Invalid, "this sign-on did not start here, or took over 10 minutes: start again at /auth/oidc/login"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		s.fail(w, r, refusal.New(refusal.Unauthenticated, "the identity provider refused the sign-on: %s", measure.Clip(e+" "+q.Get("error_description"), measure.MaxLine)))
		return
	}
	cfg, verifier, err := s.SSO.config(ctx, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		s.Log.Warn("single sign-on: code exchange failed", "err", err)
		s.fail(w, r, refusal.New(refusal.Unauthenticated, "the identity provider did not accept the sign-on code"))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, raw)
	if err != nil || idt.Nonce != parts[1] {
		s.Log.Warn("single sign-on: ID token refused", "err", err)
		s.fail(w, r, refusal.New(refusal.Unauthenticated, "the identity provider's ID token did not verify"))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		s.fail(w, r, refusal.New(refusal.Unauthenticated, "the ID token's claims do not decode"))
		return
	}
	id := service.Identity{Issuer: idt.Issuer, Subject: idt.Subject}
	id.Username, _ = claims["preferred_username"].(string)
	if s.SSO.RolesClaim != "" {
		id.Roles = []string{}
		list, _ := claims[s.SSO.RolesClaim].([]any)
		for _, v := range list {
			if r, ok := v.(string); ok {
				id.Roles = append(id.Roles, r)
			}
		}
	}
	if s.SSO.OrgClaim != "" {
		id.Org, _ = claims[s.SSO.OrgClaim].(string)
		if id.Org == "" {
			s.fail(w, r, refusal.New(refusal.Unauthenticated, "the ID token has no %s claim", s.SSO.OrgClaim))
			return
		}
	}
	t, err := s.LoginSSO(ctx, id, ui.ClientAddress(r))
	s.reply(w, r, http.StatusCreated, t, err)
}
