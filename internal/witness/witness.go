// Package witness is a c2sp.org/tlog-witness cosigner: it cosigns a log's checkpoint only
// after checking that the log signed it and that it extends the last checkpoint it cosigned,
// and it keeps that last checkpoint in a state file of its own.
//
// `takedownd dev` runs one beside the log, with its own key and state directory, so that the
// README's auditor policy requires a cosignature from the first day; `takedownd witness` runs
// one as a process of its own. In production the witnesses are run by others (litewitness and
// the like, speaking the same protocol), and this one is a stand-in until they are.
package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"filippo.io/torchwood"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxRequest bounds an add-checkpoint body: 63 proof lines and a checkpoint with a few
// signatures fit many times over.
const maxRequest = 64 << 10

// Witness cosigns the checkpoints of the logs it knows.
type Witness struct {
	signer *torchwood.CosignatureSigner
	logs   map[string]note.Verifiers // origin → the log's keys
	path   string                    // state file
	log    *slog.Logger

	mu    sync.Mutex
	state map[string]treeHead // origin → the last checkpoint cosigned
}

type treeHead struct {
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
}

// New makes a witness named name that signs with key, keeps its state under dir (created if
// missing) and cosigns the logs whose note verifier keys are logKeys (a log's origin is its
// key's name; several keys of one origin are a rotation, any one of them suffices).
func New(name string, key ed25519.PrivateKey, dir string, logKeys []string, log *slog.Logger) (*Witness, error) {
	s, err := torchwood.NewCosignatureSigner(name, key)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	w := &Witness{signer: s, logs: map[string]note.Verifiers{}, path: filepath.Join(dir, "state.json"), log: log, state: map[string]treeHead{}}
	byOrigin := map[string][]note.Verifier{}
	for _, k := range logKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("log key %q: %w", k, err)
		}
		byOrigin[v.Name()] = append(byOrigin[v.Name()], v)
	}
	for origin, vs := range byOrigin {
		w.logs[origin] = note.VerifierList(vs...)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	b, err := os.ReadFile(w.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("witness state: %w", err)
	default:
		if err := json.Unmarshal(b, &w.state); err != nil {
			// Never start again from nothing: that would cosign a fork.
			return nil, fmt.Errorf("witness state %s is damaged (%v): restore it from a backup; starting afresh would let the log fork unseen", w.path, err)
		}
	}
	return w, nil
}

// VerifierKey is the witness's cosignature/v1 verifier key, for auditors' policies.
func (w *Witness) VerifierKey() string { return w.signer.Verifier().String() }

// ServeHTTP answers POST /add-checkpoint as c2sp.org/tlog-witness says.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", "POST")
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxRequest))
	if err != nil {
		http.Error(rw, "request too large or unreadable", http.StatusBadRequest)
		return
	}
	cosig, known, err := w.Add(body)
	var status int
	switch {
	case err == nil:
		rw.Header().Set("Content-Type", "text/x.tlog.signature")
		_, _ = rw.Write(cosig)
		return
	case errors.Is(err, ErrConflict):
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", known)
		return
	case errors.Is(err, ErrUnknownLog):
		status = http.StatusNotFound
	case errors.Is(err, ErrSignature):
		status = http.StatusForbidden
	case errors.Is(err, ErrProof):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, ErrRequest):
		status = http.StatusBadRequest
	default:
		w.log.Error("witness", "err", err)
		status = http.StatusInternalServerError
	}
	http.Error(rw, err.Error(), status)
}

// The refusals of Add, by the protocol's status codes.
var (
	ErrRequest    = errors.New("malformed add-checkpoint request")                    // 400
	ErrSignature  = errors.New("the checkpoint is not signed by the log's key")       // 403
	ErrUnknownLog = errors.New("unknown log")                                         // 404
	ErrConflict   = errors.New("old size is not the size this witness last cosigned") // 409
	ErrProof      = errors.New("the consistency proof does not hold")                 // 422
)

// Add handles one add-checkpoint body: "old N", the consistency proof's lines, a blank line
// and the signed checkpoint. It returns the cosignature line, or on ErrConflict the size the
// witness knows.
func (w *Witness) Add(body []byte) (cosig []byte, known int64, err error) {
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, 0, fmt.Errorf("%w: no blank line before the checkpoint", ErrRequest)
	}
	lines := strings.Split(string(head), "\n")
	oldText, ok := strings.CutPrefix(lines[0], "old ")
	old, perr := strconv.ParseInt(oldText, 10, 64)
	if !ok || perr != nil || old < 0 || strconv.FormatInt(old, 10) != oldText {
		return nil, 0, fmt.Errorf("%w: first line must be \"old <size>\"", ErrRequest)
	}
	if len(lines)-1 > 63 {
		return nil, 0, fmt.Errorf("%w: more than 63 proof lines", ErrRequest)
	}
	proof := make(tlog.TreeProof, 0, len(lines)-1)
	for _, l := range lines[1:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: bad proof line", ErrRequest)
		}
		proof = append(proof, h)
	}
	origin, _, _ := bytes.Cut(signed, []byte("\n"))
	keys, ok := w.logs[string(origin)]
	if !ok {
		return nil, 0, fmt.Errorf("%w %q", ErrUnknownLog, origin)
	}
	n, err := note.Open(signed, keys)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	ck, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil || ck.Origin != string(origin) {
		return nil, 0, fmt.Errorf("%w: not a checkpoint", ErrRequest)
	}
	if old > ck.N {
		return nil, 0, fmt.Errorf("%w: old size %d beyond the checkpoint's %d", ErrRequest, old, ck.N)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	last := w.state[ck.Origin]
	if old != last.Size {
		return nil, last.Size, ErrConflict
	}
	// From size 0 there is nothing to be consistent with; otherwise the proof must lead from
	// the root cosigned last to this one (for equal sizes: the same root, no proof).
	if old > 0 {
		if err := tlog.CheckTree(proof, ck.N, ck.Hash, old, last.Root); err != nil {
			return nil, last.Size, fmt.Errorf("%w: from size %d to %d", ErrProof, old, ck.N)
		}
	}
	// The state is on disk before the cosignature leaves: after a crash the witness never
	// forgets what it vouched for.
	next := map[string]treeHead{}
	for k, v := range w.state {
		next[k] = v
	}
	next[ck.Origin] = treeHead{Size: ck.N, Root: ck.Hash}
	if err := w.save(next); err != nil {
		return nil, 0, err
	}
	w.state = next
	out, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, 0, fmt.Errorf("cosign: %w", err)
	}
	i := bytes.LastIndex(out, []byte("\n\n"))
	return out[i+2:], 0, nil
}

// save writes the state file atomically and durably.
func (w *Witness) save(state map[string]treeHead) error {
	b, err := json.Marshal(state)
	if err != nil {
		return err
	}
	tmp := w.path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save witness state: %w", err)
	}
	// A failed write or sync must not rename a short file over the good one.
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, w.path)
	}
	if err == nil {
		if d, derr := os.Open(filepath.Dir(w.path)); derr == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("save witness state: %w", err)
	}
	return nil
}

// LoadKey reads the witness's Ed25519 key (PEM, as `takedownd keygen` writes), making it
// first when create is set and the file is missing.
func LoadKey(path string, create bool) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		pemBytes, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
			return nil, fmt.Errorf("write witness key: %w", err)
		}
		return priv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read witness key: %w", err)
	}
	k, err := cryptoutils.UnmarshalPEMToPrivateKey(raw, cryptoutils.SkipPassword)
	if err != nil {
		return nil, fmt.Errorf("parse witness key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("witness key %s: cosignature/v1 needs Ed25519, not %T", path, k)
	}
	return priv, nil
}
