package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// fakeVault answers the two transit calls sigstore's hashivault provider makes for an Ed25519
// key: read the public key, and sign.
func fakeVault(t *testing.T, priv ed25519.PrivateKey) *httptest.Server {
	pub := priv.Public().(ed25519.PublicKey)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/transit/keys/"):
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"latest_version": 1,
				"keys": map[string]any{"1": map[string]any{"name": "ed25519", "public_key": base64.StdEncoding.EncodeToString(pub)}}}})
		case strings.HasPrefix(r.URL.Path, "/v1/transit/sign/"):
			var in struct {
				Input     string `json:"input"`
				Prehashed bool   `json:"prehashed"`
			}
			json.NewDecoder(r.Body).Decode(&in)
			msg, _ := base64.StdEncoding.DecodeString(in.Input)
			if in.Prehashed {
				http.Error(w, "ed25519 signs the message, not a digest", 400)
				return
			}
			sig := ed25519.Sign(priv, msg)
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"signature": "vault:v1:" + base64.StdEncoding.EncodeToString(sig)}})
		default:
			t.Errorf("unexpected Vault call %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
		}
	}))
}

// TestVaultSigningKey: -signing-key hashivault://… signs checkpoints that standard note
// verifiers accept.
func TestVaultSigningKey(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	vault := fakeVault(t, priv)
	defer vault.Close()
	t.Setenv("VAULT_ADDR", vault.URL)
	t.Setenv("VAULT_TOKEN", "test-token")
	signer, vkey, err := loadSigner(context.Background(), Config{SigningKey: "hashivault://takedown-audit", LogOrigin: "takedown.test/audit"}, Worker)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: "takedown.test/audit\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Fatalf("a checkpoint signed through Vault does not verify: %v", err)
	}
}
