package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/torchwood"
	"github.com/gowebpki/jcs"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Policy is what an auditor trusts: the log's name and key, and the deadlines the rules
// replay checks.
type Policy struct {
	Origin string
	// LogKey is the log's note verifier key (audit.vkey). LogKeys holds every key the policy
	// accepts (during a rotation, the old and the new); LogKey is the first.
	LogKey  string
	LogKeys []string
	// EmergencyNotification is the longest allowed time from an emergency declaration to the
	// Commission's notification.
	EmergencyNotification time.Duration
	// QuorumMembers is how many members besides the chair must vote; CommissionSize how many vote.
	QuorumMembers, CommissionSize int
	// Witnesses are cosignature/v1 verifier keys; WitnessQuorum of them must have cosigned.
	Witnesses     []string
	WitnessQuorum int
	// Strict also checks that every record is in RFC 8785 canonical form.
	Strict bool
}

// ParsePolicy reads a policy file: lines of "origin NAME", "log VKEY",
// "emergency-notification 24h", "quorum-members 2", "commission-size 5", "strict"; # starts
// a comment.
func ParsePolicy(text string) (Policy, error) {
	p := Policy{EmergencyNotification: 24 * time.Hour, QuorumMembers: 2, CommissionSize: 5}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "origin":
			p.Origin = val
		case "log":
			if p.LogKey == "" {
				p.LogKey = val
			}
			p.LogKeys = append(p.LogKeys, val)
			_, err = note.NewVerifier(val)
		case "emergency-notification":
			p.EmergencyNotification, err = time.ParseDuration(val)
		case "quorum-members":
			p.QuorumMembers, err = strconv.Atoi(val)
		case "commission-size":
			p.CommissionSize, err = strconv.Atoi(val)
		case "witness":
			p.Witnesses = append(p.Witnesses, val)
			_, err = torchwood.NewCosignatureVerifier(val)
		case "witnesses":
			p.WitnessQuorum, err = strconv.Atoi(val)
		case "strict":
			p.Strict = val == "" || val == "true"
		default:
			err = fmt.Errorf("unknown setting %q", key)
		}
		if err != nil {
			return p, fmt.Errorf("policy line %d: %w", i+1, err)
		}
	}
	if p.LogKey == "" {
		return p, errors.New("policy: no `log <verifier key>` line")
	}
	if p.WitnessQuorum == 0 {
		p.WitnessQuorum = len(p.Witnesses)
	}
	if p.WitnessQuorum > len(p.Witnesses) {
		return p, fmt.Errorf("policy: %d witnesses required, %d listed", p.WitnessQuorum, len(p.Witnesses))
	}
	if p.Origin == "" {
		p.Origin, _, _ = strings.Cut(p.LogKey, "+")
	}
	return p, nil
}

// witnessVerifiers returns the cosignature verifiers of the policy's witnesses.
func (p Policy) witnessVerifiers() []note.Verifier {
	var vs []note.Verifier
	for _, k := range p.Witnesses {
		if v, err := torchwood.NewCosignatureVerifier(k); err == nil {
			vs = append(vs, v)
		}
	}
	return vs
}

// verifiers returns the note verifiers of every log key the policy accepts.
func (p Policy) verifiers() (note.Verifiers, error) {
	keys := p.LogKeys
	if len(keys) == 0 {
		keys = []string{p.LogKey}
	}
	var vs []note.Verifier
	for _, k := range keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("policy log key: %w", err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// Failure is one thing verification found wrong. Index is the log index, or -1.
type Failure struct {
	Index int64
	Rule  string
	Msg   string
}

func (f Failure) String() string {
	if f.Index < 0 {
		return fmt.Sprintf("%s: %s", f.Rule, f.Msg)
	}
	return fmt.Sprintf("index %d: %s: %s", f.Index, f.Rule, f.Msg)
}

// Report is the outcome of verifying an archive.
type Report struct {
	Checkpoint Checkpoint
	Records    int
	Measures   int
	Failures   []Failure
	Notes      []string // what could not be checked, and why
}

// OK reports whether nothing failed.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

func (r *Report) fail(index int64, rule, format string, args ...any) {
	r.Failures = append(r.Failures, Failure{Index: index, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

// VerifyArchive checks an exported archive offline: the checkpoint's signature, every entry
// against the tree it signs, consistency with the auditor's previous checkpoint (prior, may be
// nil), and then replays the process rules over the records.
func VerifyArchive(dir string, pol Policy, prior *Checkpoint) (*Report, error) {
	rep := &Report{}
	vs, err := pol.verifiers()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	n, err := note.Open(raw, vs)
	if err != nil {
		rep.fail(-1, "checkpoint-signature", "the checkpoint is not signed by the policy's log key (%v)", err)
		return rep, nil
	}
	ck, err := ParseCheckpoint(n.Text)
	if err != nil {
		rep.fail(-1, "checkpoint", "%v", err)
		return rep, nil
	}
	rep.Checkpoint = ck
	if pol.WitnessQuorum > 0 {
		if got := witnessed(raw, pol); got < pol.WitnessQuorum {
			rep.fail(-1, "witnesses", "%d of the policy's witnesses cosigned the checkpoint; %d required", got, pol.WitnessQuorum)
		}
	}
	if ck.Origin != pol.Origin {
		rep.fail(-1, "checkpoint", "origin %q, the policy expects %q", ck.Origin, pol.Origin)
	}
	if prior != nil {
		switch {
		case prior.Size > ck.Size:
			rep.fail(-1, "rollback", "the checkpoint covers %d entries; you already saw %d", ck.Size, prior.Size)
		case prior.Size == ck.Size && prior.Root != ck.Root:
			rep.fail(-1, "fork", "two checkpoints of size %d with different roots (%s, %s)", ck.Size, prior.Root, ck.Root)
		}
	}

	// The entries, as bundles of 256.
	var records [][]byte
	for k := int64(0); k*EntriesPerTile < ck.Size; k++ {
		w := int(min(EntriesPerTile, ck.Size-k*EntriesPerTile))
		data, err := os.ReadFile(filepath.Join(dir, "tile", filepath.FromSlash(TilePath(-1, k, w))))
		if err != nil {
			rep.fail(k*EntriesPerTile, "entries", "entry bundle %s is missing", TilePath(-1, k, w))
			return rep, nil
		}
		recs, err := SplitBundle(data)
		if err != nil {
			rep.fail(k*EntriesPerTile, "entries", "entry bundle %s: %v", TilePath(-1, k, w), err)
			return rep, nil
		}
		if len(recs) != w {
			rep.fail(k*EntriesPerTile+int64(min(len(recs), w)), "entries", "entry bundle %s holds %d entries, the checkpoint needs %d (an entry was removed or inserted)",
				TilePath(-1, k, w), len(recs), w)
		}
		records = append(records, recs...)
	}
	rep.Records = len(records)

	// Recompute the tree from the entries alone.
	stored := make([]tlog.Hash, 0, 2*len(records))
	mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(stored)) {
				return nil, fmt.Errorf("hash %d not computed", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, rec := range records {
		hs, err := tlog.StoredHashes(int64(i), rec, mem)
		if err != nil {
			return nil, err
		}
		stored = append(stored, hs...)
	}
	if int64(len(records)) == ck.Size {
		root, err := tlog.TreeHash(ck.Size, mem)
		if err != nil {
			return nil, err
		}
		if root != ck.Root {
			rep.fail(-1, "tree", "the entries hash to root %s, the signed checkpoint says %s", root, ck.Root)
			locate(rep, dir, ck, records)
		}
		if prior != nil && prior.Size > 0 && prior.Size < ck.Size {
			if old, err := tlog.TreeHash(prior.Size, mem); err != nil || old != prior.Root {
				rep.fail(-1, "consistency", "the first %d entries do not give the root of your previous checkpoint", prior.Size)
			}
		}
	}

	// The records themselves, decoded on every core.
	decoded := make([]Indexed, len(records))
	bad := make([]string, len(records))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(records); i += workers {
				raw := records[i]
				decoded[i].Index = int64(i)
				if err := decoded[i].decode(raw); err != nil {
					bad[i] = "not a JSON audit record: " + err.Error()
					continue
				}
				// The leaf hash binds the bytes whatever their form; canonical form is checked
				// in strict mode only, as it costs more than everything else together.
				if pol.Strict {
					if canon, err := jcs.Transform(raw); err != nil || !bytes.Equal(canon, raw) {
						bad[i] = "not RFC 8785 canonical JSON"
					}
				}
			}
		})
	}
	wg.Wait()
	recs := make([]Indexed, 0, len(decoded))
	for i := range decoded {
		if bad[i] != "" {
			rep.fail(int64(i), "record", "%s", bad[i])
			continue
		}
		recs = append(recs, decoded[i])
	}
	Replay(recs, pol, rep)
	return rep, nil
}

// witnessed counts the policy's witnesses whose cosignature on the note verifies.
func witnessed(raw []byte, pol Policy) int {
	count := 0
	for _, v := range pol.witnessVerifiers() {
		if n, err := note.Open(raw, note.VerifierList(v)); err == nil && len(n.Sigs) > 0 {
			count++
		}
	}
	return count
}

// locate names the entries that differ from the hashes in the archive's tiles, when those
// tiles are themselves consistent with the signed root (a rewritten entry, tiles left alone).
func locate(rep *Report, dir string, ck Checkpoint, records [][]byte) {
	tr := tlog.TileHashReader(tlog.Tree{N: ck.Size, Hash: ck.Root}, dirTiles(dir))
	for i, rec := range records {
		hs, err := tr.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(i))})
		if err != nil {
			rep.Notes = append(rep.Notes, "the archive's tiles do not match the signed checkpoint either, so the altered entries cannot be named")
			return
		}
		if hs[0] != tlog.RecordHash(rec) {
			rep.fail(int64(i), "entry-altered", "the entry does not hash to the leaf the signed tree holds")
		}
	}
}

type dirTiles string

func (dirTiles) Height() int { return TileHeight }
func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := os.ReadFile(filepath.Join(string(d), "tile", filepath.FromSlash(TilePath(t.L, t.N, t.W))))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
func (dirTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// VerifyProof checks one record against a c2sp.org/tlog-proof document.
func VerifyProof(doc, record []byte, pol Policy) (Checkpoint, int64, error) {
	index, p, ckText, err := ParseProof(doc)
	if err != nil {
		return Checkpoint{}, 0, err
	}
	vs, err := pol.verifiers()
	if err != nil {
		return Checkpoint{}, 0, err
	}
	n, err := note.Open(ckText, vs)
	if err != nil {
		return Checkpoint{}, index, fmt.Errorf("checkpoint-signature: %w", err)
	}
	ck, err := ParseCheckpoint(n.Text)
	if err != nil {
		return ck, index, err
	}
	if err := tlog.CheckRecord(p, ck.Size, ck.Root, index, tlog.RecordHash(record)); err != nil {
		return ck, index, fmt.Errorf("inclusion: the record is not entry %d of the signed tree: %w", index, err)
	}
	return ck, index, nil
}
