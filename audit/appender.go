package audit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Appender writes audit entries that the sequencer will sign. Each entry carries an
// authenticator, HMAC-SHA256 under a key that is kept out of the database (a file the service
// and the workers read, never a row), so a row that someone with the database's credentials
// INSERTs directly is recognised and refused: the sequencer signs only entries the service
// wrote.
//
// The authenticator binds the entry's ID to its canonical record, so an authentic record
// copied under another ID fails too. A symmetric key suffices because whoever checks it (the
// sequencer, in the worker) also appends, and so holds the key anyway.
type Appender struct {
	key []byte
}

// AppendKeySize is the length of an append key in bytes.
const AppendKeySize = 32

// NewAppender returns an appender with key, which must be AppendKeySize random bytes.
func NewAppender(key []byte) (*Appender, error) {
	if len(key) != AppendKeySize {
		return nil, fmt.Errorf("an append key is %d bytes, not %d", AppendKeySize, len(key))
	}
	return &Appender{key: append([]byte(nil), key...)}, nil
}

// Derive returns 32 bytes for purpose, derived from the append key (HKDF-SHA256): a secret
// every serve and worker of an installation shares without another file to give out.
func (a *Appender) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, a.key, nil, purpose, 32)
	if err != nil {
		panic(err) // only for a length HKDF-SHA256 cannot give
	}
	return k
}

// appendKeyTag names the file format of append keys, so a checkpoint signing key or anything
// else given by mistake is refused rather than used.
const appendKeyTag = "takedown-append-key-v1 "

// GenerateAppendKey writes a new append key to path (mode 0600), refusing to overwrite one.
func GenerateAppendKey(path string) error {
	key := make([]byte, AppendKeySize)
	_, _ = rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write append key: %w", err)
	}
	if _, err := fmt.Fprintf(f, "%s%s\n", appendKeyTag, hex.EncodeToString(key)); err != nil {
		f.Close()
		return fmt.Errorf("write append key %s: %w", path, err)
	}
	return f.Close()
}

// LoadAppender reads an append key written by GenerateAppendKey.
func LoadAppender(path string) (*Appender, error) {
	raw, err := ReadFile(path, 1<<10)
	if err != nil {
		return nil, fmt.Errorf("read append key: %w", err)
	}
	text, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), appendKeyTag)
	if !ok {
		return nil, fmt.Errorf("%s is not an append key (make one with `takedownd keygen -append`)", path)
	}
	key, err := hex.DecodeString(text)
	if err != nil || len(key) != AppendKeySize {
		return nil, fmt.Errorf("%s is not an append key: it must hold %d bytes in hex", path, AppendKeySize)
	}
	return NewAppender(key)
}

// Authenticator returns the authenticator of the entry id holding record, as Append stores it.
func (a *Appender) Authenticator(id string, record []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("takedown.audit/append\n"))
	m.Write([]byte(id))
	m.Write([]byte{'\n'})
	m.Write(record)
	return m.Sum(nil)
}

// Authentic reports whether auth is the authenticator this appender makes for the entry id
// holding record.
func (a *Appender) Authentic(id string, record, auth []byte) bool {
	return a != nil && len(auth) == sha256.Size && hmac.Equal(a.Authenticator(id, record), auth)
}

// errNoAppender is what appends without a key fail with: a configuration error, never healed by
// retrying.
var errNoAppender = errors.New("no append key: entries cannot be authenticated")
