package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SSOSuite is the HPKE suite (RFC 9180) that seals the token the server hands to `takedown
// login -sso`: DHKEM(X25519), HKDF-SHA256, AES-256-GCM.
func SSOSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.AES256GCM()
}

// SSOInfo is the HPKE info string: it binds the sealed token to the sign-on's state.
func SSOInfo(state string) []byte { return []byte("takedown cli sign-on v1\x00" + state) }

// SSOSigned is what the server signs in its answer to the command line: the sign-on's state
// and key, and the sealed token or the refusal.
func SSOSigned(state string, key []byte, sealed, refusal string) []byte {
	return []byte("takedown cli sign-on answer v1\x00" + state + "\x00" + base64.RawURLEncoding.EncodeToString(key) + "\x00" + sealed + "\x00" + refusal)
}

// LoginSSO signs on through the server's identity provider in a browser (RFC 8252: a
// loopback redirect). It listens on listen (a loopback address; empty: a free port of
// 127.0.0.1), calls open with the URL to visit, and
// waits for the browser to come back with the token sealed to a key only this process holds.
// Nothing is stored; the caller keeps the token.
func LoginSSO(ctx context.Context, baseURL, listen string, open func(url string) error) (*Client, error) {
	base := strings.TrimRight(baseURL, "/")
	// The server's answer is signed: the key and state travel in URLs others may see (the
	// browser's history, its command line), and whoever sees them could seal a token of their
	// choosing to this listener.
	var server struct {
		Key string `json:"key"`
	}
	if err := (&Client{BaseURL: base}).Do(ctx, "GET", "/auth/oidc/cli-key", nil, &server); err != nil {
		return nil, fmt.Errorf("sign-on: %w", err)
	}
	serverKey, err := base64.RawURLEncoding.DecodeString(server.Key)
	if err != nil || len(serverKey) != ed25519.PublicKeySize {
		return nil, errors.New("sign-on: the server's answer key is not an Ed25519 public key")
	}
	kem, kdf, aead := SSOSuite()
	priv, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("make a sign-on key: %w", err)
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if host, _, err := net.SplitHostPort(listen); err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("listen address %q: want a loopback IP and port, such as 127.0.0.1:8400", listen)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen for the browser's return: %w", err)
	}
	defer l.Close()
	var b [24]byte
	_, _ = rand.Read(b[:])
	state := base64.RawURLEncoding.EncodeToString(b[:])
	pub := priv.PublicKey().Bytes()
	back := "http://" + l.Addr().String() + "/callback"
	visit := base + "/auth/oidc/login?" + url.Values{
		"cli": {back}, "key": {base64.RawURLEncoding.EncodeToString(pub)}, "state": {state},
	}.Encode()

	type outcome struct {
		token string
		err   error
	}
	done := make(chan outcome, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("state") != state {
			// Not this sign-on's answer (a stale tab, another page): ignored, the wait goes on.
			http.Error(w, "this is not the sign-on takedown login -sso is waiting for", http.StatusBadRequest)
			return
		}
		var o outcome
		sig, _ := base64.RawURLEncoding.DecodeString(q.Get("sig"))
		if !ed25519.Verify(serverKey, SSOSigned(state, pub, q.Get("sealed"), q.Get("error")), sig) {
			// Not the server's answer: someone who saw the sign-on URL. Ignored; the wait goes on.
			http.Error(w, "this answer is not signed by the server: ignored", http.StatusBadRequest)
			return
		}
		if e := q.Get("error"); e != "" {
			o.err = fmt.Errorf("sign-on refused: %s", e)
		} else if sealed, err := base64.RawURLEncoding.DecodeString(q.Get("sealed")); err != nil {
			o.err = errors.New("the server's answer is not base64url")
		} else if plain, err := hpke.Open(priv, kdf, aead, SSOInfo(state), sealed); err != nil {
			o.err = errors.New("the server's answer does not open with this sign-on's key")
		} else {
			var t struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal(plain, &t); err != nil || t.Token == "" {
				o.err = errors.New("the server's answer holds no token")
			}
			o.token = t.Token
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "Signed in: you may close this tab and go back to the terminal."
		if o.err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			msg = "Not signed in: " + o.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><html lang=en><title>takedown</title><p>%s</p></html>\n", html.EscapeString(msg))
		select {
		case done <- o:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	defer srv.Close()

	if err := open(visit); err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("sign-on: no answer from the browser: %w", ctx.Err())
	case o := <-done:
		if o.err != nil {
			return nil, o.err
		}
		return &Client{BaseURL: base, Token: o.token}, nil
	}
}
