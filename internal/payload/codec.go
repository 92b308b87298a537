// Package payload encrypts what takedown's workflows and activities hand to Temporal, so that
// a Temporal cluster (self-hosted, shared or Temporal Cloud) holds no case content or personal
// data: every payload (inputs, results, Update arguments, memos, failure messages) is sealed
// with AES-256-GCM under a key Temporal never sees.
//
// A key file holds one or more keys: the first seals, all open. A key is rotated in two steps,
// so that no process meets a payload it cannot open: `takedownd keygen -payload -out FILE` on
// an existing file adds a key that only opens, given to every serve and worker; then
// `-promote` moves it in front, where it seals. An old key is dropped once no history that
// needs it is kept.
package payload

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const (
	// Encoding marks an encrypted payload in its metadata.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the key that sealed a payload.
	MetadataKeyID = "encryption-key-id"
	// KeySize is the size of a payload key (AES-256).
	KeySize = 32

	keyTag = "takedown-payload-key-v1:"
	// pendingTag marks a key Generate added to an existing file: it opens, and Promote makes
	// it the one that seals. Without the mark a second Promote would bring the old key back.
	pendingTag = "takedown-payload-key-v1-pending:"
	maxKeys    = 64
)

// Codec seals and opens payloads; it is a converter.PayloadCodec.
type Codec struct {
	ids   []string // newest first; ids[0] encrypts
	aeads map[string]cipher.AEAD
	// AcceptPlaintext lets unsealed payloads through Decode: only while histories written
	// before encryption was turned on still run. Otherwise anyone who can reach the Temporal
	// cluster could send an Update, a signal or an activity's completion in clear, in anyone's
	// name; sealed, only a holder of the key can.
	AcceptPlaintext bool
}

// ErrUnsealed refuses a payload that was not sealed with a payload key.
var ErrUnsealed = errors.New("payload codec: an unsealed payload is refused: whoever sent it did not hold the payload key (a forged Update, signal or completion?); -payload-accept-plaintext lets histories written before encryption run")

// New returns a codec over keys, newest first.
func New(keys ...[]byte) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("payload codec: no key")
	}
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("payload codec: a key must be %d bytes, not %d", KeySize, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := KeyID(k)
		if _, dup := c.aeads[id]; dup {
			return nil, fmt.Errorf("payload codec: key %s is given twice", id)
		}
		c.ids = append(c.ids, id)
		c.aeads[id] = aead
	}
	return c, nil
}

// KeyID names a key without revealing it: the first 16 hex digits of its SHA-256.
func KeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("takedown payload key id\n"), key...))
	return hex.EncodeToString(h[:8])
}

// KeyIDs are the codec's keys' names, the encrypting one first.
func (c *Codec) KeyIDs() []string { return append([]string(nil), c.ids...) }

// Encode seals each payload under the newest key. The key's name is bound to the ciphertext,
// so a payload relabelled with another key's name does not open.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.ids[0]
	aead := c.aeads[id]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("payload codec: marshal: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte(id)},
			Data:     aead.Seal(nonce, nonce, plain, []byte(id)),
		}
	}
	return out, nil
}

// Decode opens the payloads this codec sealed. An unsealed payload is refused (ErrUnsealed)
// unless AcceptPlaintext; a payload sealed under a key the codec does not hold, or altered, is
// an error that names the key.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			if !c.AcceptPlaintext {
				return payloads, ErrUnsealed
			}
			out[i] = p
			continue
		}
		id := string(p.Metadata[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return payloads, fmt.Errorf("payload codec: sealed under key %q, which this process does not hold (add it to the payload key file)", clip(id))
		}
		n := aead.NonceSize()
		if len(p.Data) < n+aead.Overhead() {
			return payloads, fmt.Errorf("payload codec: a payload under key %s is too short to be sealed", id)
		}
		plain, err := aead.Open(nil, p.Data[:n], p.Data[n:], []byte(id))
		if err != nil {
			return payloads, fmt.Errorf("payload codec: a payload under key %s does not open: altered, or sealed by another key of that name", id)
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(plain, out[i]); err != nil {
			return payloads, fmt.Errorf("payload codec: unmarshal: %w", err)
		}
	}
	return out, nil
}

// DataConverter is Temporal's default converter with every payload sealed by c.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter moves failures' messages and stack traces into a payload sealed by c: a
// refusal's reason can name a person or a target.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: c.DataConverter(), EncodeCommonAttributes: true,
	})
}

func clip(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Generate writes a new key file at path, or, if path exists, adds a new key after the keys it
// holds, marked as waiting: it opens payloads but seals none until Promote. It returns the new
// key's name.
func Generate(path string) (string, error) {
	var old []fileKey
	if _, err := os.Stat(path); err == nil {
		if old, err = readFile(path); err != nil {
			return "", err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if len(old) >= maxKeys {
		return "", fmt.Errorf("%s already holds %d keys: drop the oldest before adding one", path, len(old))
	}
	for _, k := range old {
		if k.pending {
			return "", fmt.Errorf("%s already holds key %s waiting to seal: promote it first (takedownd keygen -payload -promote -out %s)", path, KeyID(k.key), path)
		}
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	if err := writeKeys(path, append(old, fileKey{key: key, pending: len(old) > 0})); err != nil {
		return "", err
	}
	return KeyID(key), nil
}

// Promote moves the key Generate added, waiting, in front: it seals from the next start on.
// It returns that key's name. With no key waiting it changes nothing and says so: promoting
// again must not bring the old key back.
func Promote(path string) (string, error) {
	keys, err := readFile(path)
	if err != nil {
		return "", err
	}
	for i, k := range keys {
		if !k.pending {
			continue
		}
		k.pending = false
		rest := append(append([]fileKey{}, keys[:i]...), keys[i+1:]...)
		if err := writeKeys(path, append([]fileKey{k}, rest...)); err != nil {
			return "", err
		}
		return KeyID(k.key), nil
	}
	return "", fmt.Errorf("%s holds no key waiting to seal (%s seals): add one first (takedownd keygen -payload -out %s)", path, KeyID(keys[0].key), path)
}

// fileKey is one key of a key file.
type fileKey struct {
	key     []byte
	pending bool // added by Generate, not promoted yet
}

func writeKeys(path string, keys []fileKey) error {
	var buf bytes.Buffer
	for _, k := range keys {
		tag := keyTag
		if k.pending {
			tag = pendingTag
		}
		fmt.Fprintf(&buf, "%s%s\n", tag, hex.EncodeToString(k.key))
	}
	// Written beside and renamed, so a crash leaves the old file or the new one, never half.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write payload key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write payload key: %w", err)
	}
	return nil
}

// Load reads a key file written by Generate.
func Load(path string) (*Codec, error) {
	keys, err := readKeys(path)
	if err != nil {
		return nil, err
	}
	c, err := New(keys...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func readKeys(path string) ([][]byte, error) {
	keys, err := readFile(path)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = k.key
	}
	return out, nil
}

func readFile(path string) ([]fileKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read payload key: %w", err)
	}
	defer f.Close()
	var keys []fileKey
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		text, pending := strings.CutPrefix(line, pendingTag)
		ok := pending
		if !pending {
			text, ok = strings.CutPrefix(line, keyTag)
		}
		k, err := hex.DecodeString(text)
		if !ok || err != nil || len(k) != KeySize {
			return nil, fmt.Errorf("%s:%d is not a payload key (make the file with `takedownd keygen -payload`)", path, n)
		}
		keys = append(keys, fileKey{key: k, pending: pending})
		if len(keys) > maxKeys {
			return nil, fmt.Errorf("%s holds more than %d keys", path, maxKeys)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read payload key %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no payload key (make one with `takedownd keygen -payload`)", path)
	}
	if keys[0].pending {
		return nil, fmt.Errorf("%s: its first key, the one that seals, is marked as waiting: the file was edited by hand", path)
	}
	return keys, nil
}
