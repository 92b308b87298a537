package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a c2sp.org/tlog-checkpoint tree head.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text is the checkpoint's note text.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint reads a checkpoint's note text.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return c, errors.New("checkpoint: fewer than three lines")
	}
	c.Origin = lines[0]
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return c, fmt.Errorf("checkpoint: bad size %q", lines[1])
	}
	c.Size = n
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return c, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	copy(c.Root[:], root)
	return c, nil
}

// noteSigner signs checkpoints through a sigstore signer holding an Ed25519 key (a local key,
// or a KMS key that signs pure Ed25519).
type noteSigner struct {
	name   string
	hash   uint32
	signer signature.Signer
}

func (s *noteSigner) Name() string    { return s.name }
func (s *noteSigner) KeyHash() uint32 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) {
	return s.signer.SignMessage(bytes.NewReader(msg))
}

// keyHash is the signed-note key ID: the first four bytes of SHA-256(name || "\n" || key).
func keyHash(name string, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// NewNoteSigner makes a checkpoint signer named origin from a sigstore signer whose public
// key is Ed25519, and returns it with the verifier key auditors need.
func NewNoteSigner(ctx context.Context, origin string, s signature.Signer) (note.Signer, string, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return nil, "", fmt.Errorf("read the signing key's public key: %w", err)
	}
	ed, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("the audit log signs checkpoints with Ed25519 (signed-note type 0x01); the key is %T", pub)
	}
	key := append([]byte{0x01}, ed...)
	h := keyHash(origin, key)
	vkey := fmt.Sprintf("%s+%08x+%s", origin, h, base64.StdEncoding.EncodeToString(key))
	return &noteSigner{name: origin, hash: h, signer: s}, vkey, nil
}

// GenerateKey writes a new Ed25519 private key as PEM to path (mode 0600), refusing to
// overwrite one.
func GenerateKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	pemBytes, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadKey reads a PEM private key written by GenerateKey as a sigstore signer.
func LoadKey(path string) (signature.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(raw, cryptoutils.SkipPassword)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", path, err)
	}
	// Ed25519 signs the message itself; the hash argument only matters for other key types.
	return signature.LoadSigner(priv, crypto.SHA256)
}
