package audit

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gowebpki/jcs"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

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
	// Note is the archive's signed checkpoint with its cosignatures: what an auditor saves as
	// state, and shows beside their saved one when the two disagree.
	Note     []byte
	Records  int
	Measures int
	// Signed counts the decisions whose personal signature verified.
	Signed int
	// Roots are the personal keys registered by an approval no administrator signed: the
	// signatures made with them rest on the administrator's word alone, so an auditor confirms
	// these keys with their holders (the first administrators' keys at least are such).
	Roots    []Root
	Failures []Failure
	Notes    []string // what could not be checked, and why
	// Restarts are where the log went on under a new origin after a restore lost entries
	// (takedownd audit restart-log): each chained to the previous origin's checkpoint.
	Restarts []Restarted
}

// Root is a key registered without a signed approval.
type Root struct {
	Index      int64 // the registration's entry
	Key, User  string
	ApprovedBy string
}

// Restarted is one restart of the log, as its entry records it and verify checked it.
type Restarted struct {
	Index          int64  // the restart entry's
	PreviousOrigin string // whose newest checkpoint the entries before it give
	PreviousSize   int64
	Witnessed      int64 // the largest size a witness had cosigned under it (0: not recorded)
}

// OK reports whether nothing failed.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

// Forked reports whether the archive's checkpoint contradicts the auditor's saved one: a
// fork, a rollback or an inconsistent prefix. Both signed checkpoints are then the evidence.
func (r *Report) Forked() bool {
	for _, f := range r.Failures {
		if f.Rule == "fork" || f.Rule == "rollback" || f.Rule == "consistency" {
			return true
		}
	}
	return false
}

// ReadState reads an auditor's saved state: the signed checkpoint, with its cosignatures,
// that they last verified. The log's signature on it is checked again under the policy; a
// state saved by an earlier verifier holds the checkpoint's text alone, and is read as such.
func ReadState(b []byte, pol Policy) (Checkpoint, error) {
	if !bytes.Contains(b, []byte("\n\n")) {
		return ParseCheckpoint(string(b))
	}
	vs, err := pol.verifiers()
	if err != nil {
		return Checkpoint{}, err
	}
	n, err := note.Open(b, vs)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("the saved checkpoint is not signed by the policy's log key: %w", err)
	}
	return ParseCheckpoint(n.Text)
}

func (r *Report) fail(index int64, rule, format string, args ...any) {
	r.Failures = append(r.Failures, Failure{Index: index, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

// VerifyArchive checks an exported archive offline: the checkpoint's signature, every entry
// against the tree it signs, consistency with the auditor's previous checkpoint (prior, may be
// nil), and then replays the process rules over the records.
func VerifyArchive(dir string, pol Policy, prior *Checkpoint) (*Report, error) {
	return verifyArchive(dir, pol, prior, companionBudget)
}

// verifyArchive is VerifyArchive with the workers' companion budget given: past it, the
// replay reads companions itself, and the outcome is the same.
func verifyArchive(dir string, pol Policy, prior *Checkpoint, limit int64) (*Report, error) {
	rep := &Report{}
	vs, err := pol.verifiers()
	if err != nil {
		return nil, err
	}
	raw, err := ReadFile(filepath.Join(dir, "checkpoint"), MaxCheckpointFile)
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
	rep.Checkpoint, rep.Note = ck, raw
	if halts, err := ReadFile(filepath.Join(dir, HaltsFile), MaxSmallFile); err == nil {
		rep.fail(-1, "halt", "the log was halted when this archive was exported: %s", strings.TrimSpace(string(halts)))
	}
	if newest, err := ReadFile(filepath.Join(dir, NewestFile), MaxCheckpointFile); err == nil {
		if n, err := note.Open(newest, vs); err == nil {
			if c, err := ParseCheckpoint(n.Text); err == nil && (c.Size != ck.Size || c.Root != ck.Root) {
				rep.fail(-1, "halt", "the log had signed a newer checkpoint (size %d, root %s) than this archive's (size %d), which the witnesses had not cosigned: a rollback or a fork may stand", c.Size, c.Root, ck.Size)
			}
		}
	}
	if err := pol.cosigned(raw, ck.Origin); err != nil {
		rep.fail(-1, "witnesses", "%v", err)
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

	// The entry bundles: read, hashed and decoded on every core, and replayed in log order as
	// they come. Memory holds a few bundles and the tree's right edge, whatever size the
	// checkpoint claims.
	whole := true
	var tree compact
	priorRoot, priorSeen := tlog.Hash{}, false
	rp := newReplayer(pol, rep)
	var restarts []restart
	mem := &budget{limit: limit}
	late := newDecoder()
	read := readArchive(dir, ck.Size, pol.Strict, mem, func(k int64, bd *bundle) bool {
		start := k * EntriesPerTile
		if bd.err != "" {
			rep.fail(start, "entries", "%s", bd.err)
			return false
		}
		if bd.count != bd.width {
			whole = false
			rep.fail(start+int64(min(bd.count, bd.width)), "entries", "entry bundle tile/%s holds %d entries, the checkpoint needs %d (an entry was removed or inserted)",
				TilePath(-1, k, bd.width), bd.count, bd.width)
		}
		if whole {
			if bd.width == EntriesPerTile && (prior == nil || prior.Size <= start || prior.Size >= start+EntriesPerTile) {
				tree.addSubtree(bd.root, EntriesPerTile)
			} else {
				for i := range bd.width {
					tree.add(bd.leaves[i])
					if prior != nil && tree.size == prior.Size {
						priorRoot, priorSeen = tree.root(), true
					}
				}
			}
			if prior != nil && tree.size == prior.Size && !priorSeen {
				priorRoot, priorSeen = tree.root(), true
			}
		}
		rep.Records += bd.count
		for i := range min(bd.count, bd.width) {
			if bd.bad[i] != "" {
				rep.fail(start+int64(i), "record", "%s", bd.bad[i])
				continue
			}
			e := &bd.decoded[i]
			why := bd.companion[i]
			if e.facts.Companions != nil && bd.held[i] == 0 && why == "" {
				why = e.facts.resolve(dir, late) // the workers left it: over their memory budget
			}
			if why != "" {
				rep.fail(e.Index, "companion", "%s", why)
			}
			if e.Action == RestartAction {
				restarts = append(restarts, restart{index: e.Index, previous: e.facts.Previous, witnessed: e.facts.Witnessed})
			}
			rp.add(e)
			e.facts.Steps, e.facts.Targets = nil, nil
			mem.held.Add(-bd.held[i])
		}
		return true
	})
	if !read {
		return rep, nil
	}
	rp.finish()

	// The tree the entries alone make.
	if whole {
		if root := tree.root(); root != ck.Root {
			rep.fail(-1, "tree", "the entries hash to root %s, the signed checkpoint says %s", root, ck.Root)
			locate(rep, dir, ck)
		}
		if prior != nil && prior.Size > 0 && prior.Size < ck.Size && (!priorSeen || priorRoot != prior.Root) {
			rep.fail(-1, "consistency", "the first %d entries do not give the root of your previous checkpoint", prior.Size)
		}
		for _, r := range restarts {
			checkRestart(rep, dir, ck, vs, r)
		}
	}
	// Whole-log failures first, then the rest in log order.
	slices.SortStableFunc(rep.Failures, func(a, b Failure) int { return cmp.Compare(a.Index, b.Index) })
	return rep, nil
}

// bundle is one entry bundle as read, with its records decoded.
type bundle struct {
	width   int // entries the checkpoint puts in it
	count   int // entries it held
	err     string
	decoded []entry
	bad     []string // why each record could not be read, or ""
	// Companion data is read back by the workers too, as a botnet's lists are most of an
	// archive's bytes: why a record's could not be, or "", and the bytes it holds under the
	// budget (0: left for the replay to read, one record at a time).
	companion []string
	held      []int64
	leaves    [EntriesPerTile]tlog.Hash
	root      tlog.Hash // of the 256 leaves, when the bundle is whole
}

// readArchive reads the entry bundles of a tree of size entries, hashing and decoding their
// records on every core, and hands each bundle to use in order. It stops at the first bundle
// use refuses, and reports whether it read them all.
func readArchive(dir string, size int64, strict bool, mem *budget, use func(k int64, bd *bundle) bool) bool {
	nb := (size + EntriesPerTile - 1) / EntriesPerTile
	workers := runtime.GOMAXPROCS(0)
	// Bundles are recycled: a worker needs a free one to start on the next bundle, so at most
	// window bundles are between reading and use, and bundle k waits in ring[k%window].
	window := 4 * workers
	free := make(chan *bundle, window)
	ring := make([]chan *bundle, window)
	for i := range window {
		free <- &bundle{decoded: make([]entry, EntriesPerTile), bad: make([]string, EntriesPerTile), companion: make([]string, EntriesPerTile), held: make([]int64, EntriesPerTile)}
		ring[i] = make(chan *bundle, 1)
	}
	done := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			d := newDecoder()
			for {
				var bd *bundle
				select {
				case bd = <-free:
				case <-done:
					return
				}
				k := next.Add(1) - 1
				if k >= nb {
					return
				}
				bd.read(dir, k, size, d, strict, mem)
				ring[k%int64(window)] <- bd
			}
		})
	}
	all := true
	for k := range nb {
		bd := <-ring[k%int64(window)]
		if !use(k, bd) {
			all = false
			break
		}
		free <- bd
	}
	close(done)
	wg.Wait()
	return all
}

// read reads entry bundle k of a tree of size entries into bd.
func (bd *bundle) read(dir string, k, size int64, d *decoder, strict bool, mem *budget) {
	lo := k * EntriesPerTile
	bd.width = int(min(EntriesPerTile, size-lo))
	bd.count, bd.err = 0, ""
	path := TilePath(-1, k, bd.width)
	data, err := readCapped(filepath.Join(dir, "tile", filepath.FromSlash(path)), MaxBundleFile, d.file)
	if errors.Is(err, fs.ErrNotExist) {
		bd.err = fmt.Sprintf("entry bundle %s is missing", path)
		return
	}
	if err != nil {
		bd.err = fmt.Sprintf("entry bundle %s cannot be read: %v", path, err)
		return
	}
	d.file = data // decoded records copy what they keep, so the next bundle reuses it
	recs, err := appendBundle(d.entries[:0], data)
	if err != nil {
		bd.err = fmt.Sprintf("entry bundle %s: %v", path, err)
		return
	}
	d.entries = recs
	bd.count = len(recs)
	recs = recs[:min(len(recs), bd.width)]
	for i, raw := range recs {
		x := lo + int64(i)
		bd.leaves[i] = tlog.RecordHash(raw)
		r := &bd.decoded[i]
		*r = entry{Index: x}
		bd.bad[i], bd.companion[i], bd.held[i] = "", "", 0
		if err := d.decode(raw, r); err != nil {
			bd.bad[i] = "not a JSON audit record: " + err.Error()
			continue
		}
		if why := r.format(); why != "" {
			bd.bad[i] = why
			continue
		}
		// The leaf hash binds the bytes whatever their form; canonical form is checked in
		// strict mode only, as it costs more than everything else together.
		if strict {
			if canon, err := jcs.Transform(raw); err != nil || !bytes.Equal(canon, raw) {
				bd.bad[i] = "not RFC 8785 canonical JSON"
				continue
			}
		}
		if r.facts.Companions != nil {
			bd.companion[i], bd.held[i] = r.facts.resolveWithin(dir, d, mem)
		}
	}
	if len(recs) == EntriesPerTile {
		var c compact
		for i := range EntriesPerTile {
			c.add(bd.leaves[i])
		}
		bd.root = c.root()
	}
}

// format says what is wrong with the record's format version and salt, if anything.
func (r *entry) format() string {
	switch {
	case r.V == 1 && !r.salted:
		return "" // the first format, before salts
	case r.V == Version && r.salted:
		return ""
	case r.V == Version:
		return "the record carries no 256-bit salt, so its public leaf hash would confirm a guess of its content"
	default:
		return fmt.Sprintf("the record's format version %d is not one this verifier knows (1 or %d)", r.V, Version)
	}
}

// locate names the entries that differ from the hashes in the archive's tiles, when those
// tiles are themselves consistent with the signed root (a rewritten entry, tiles left alone).
// It reads the bundles again, one at a time.
func locate(rep *Report, dir string, ck Checkpoint) {
	tr := tlog.TileHashReader(tlog.Tree{N: ck.Size, Hash: ck.Root}, dirTiles(dir))
	var buf []byte
	for lo := int64(0); lo < ck.Size; lo += EntriesPerTile {
		w := int(min(EntriesPerTile, ck.Size-lo))
		data, err := readCapped(filepath.Join(dir, "tile", filepath.FromSlash(TilePath(-1, lo/EntriesPerTile, w))), MaxBundleFile, buf)
		if err != nil {
			return
		}
		buf = data
		recs, err := appendBundle(nil, data)
		if err != nil {
			return
		}
		for i, raw := range recs[:min(len(recs), w)] {
			hs, err := tr.ReadHashes([]int64{tlog.StoredHashIndex(0, lo+int64(i))})
			if err != nil {
				rep.Notes = append(rep.Notes, "the archive's tiles do not match the signed checkpoint either, so the altered entries cannot be named")
				return
			}
			if hs[0] != tlog.RecordHash(raw) {
				rep.fail(lo+int64(i), "entry-altered", "the entry does not hash to the leaf the signed tree holds")
			}
		}
	}
}

type dirTiles string

func (dirTiles) Height() int { return TileHeight }
func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := ReadFile(filepath.Join(string(d), "tile", filepath.FromSlash(TilePath(t.L, t.N, t.W))), MaxTileFile)
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
	if err := pol.cosigned(ckText, ck.Origin); err != nil {
		return ck, index, fmt.Errorf("witnesses: %w", err)
	}
	if err := tlog.CheckRecord(p, ck.Size, ck.Root, index, tlog.RecordHash(record)); err != nil {
		return ck, index, fmt.Errorf("inclusion: the record is not entry %d of the signed tree: %w", index, err)
	}
	return ck, index, nil
}

// companionBudget bounds the companion bytes the workers hold read back ahead of the replay,
// whatever an archive's records point at: past it, the replay reads them itself.
const companionBudget = 256 << 20

// budget counts the companion bytes held read back ahead of the replay against its limit.
type budget struct {
	held  atomic.Int64
	limit int64
}

// resolveWithin resolves f's companions when their size fits what is left of the budget, and
// returns what resolve says and the bytes charged to the budget (0 when it left them).
func (f *facts) resolveWithin(dir string, d *decoder, mem *budget) (string, int64) {
	var size int64
	for _, name := range resolved {
		ref, ok := f.Companions[name]
		if !ok {
			continue
		}
		sum, _ := strings.CutPrefix(ref, "sha256:")
		if len(sum) != 64 || !isLowerHex(sum) {
			return f.resolve(dir, d), 0 // says what is wrong with the name, reading nothing
		}
		info, err := os.Stat(filepath.Join(dir, "companions", sum))
		if err != nil || !info.Mode().IsRegular() || info.Size() > MaxCompanionFile {
			return f.resolve(dir, d), 0 // says why it cannot be read
		}
		size += info.Size() + 1 // never 0: 0 means left for the replay
	}
	if mem.held.Add(size) > mem.limit {
		mem.held.Add(-size)
		return "", 0
	}
	return f.resolve(dir, d), size
}

// resolved names the details the replay reads back from companion data.
var resolved = []string{"target_values", "targets", "step_list", "rule_set"}

// resolve reads back the details the replay needs that a record moved to companion data
// (target values of a seal, the step list of a large batch, its targets), each checked against
// the hash the record commits to. It says what is wrong, or "".
func (f *facts) resolve(dir string, d *decoder) string {
	for _, name := range resolved {
		ref, ok := f.Companions[name]
		if !ok {
			continue
		}
		sum, ok := strings.CutPrefix(ref, "sha256:")
		if !ok || len(sum) != 64 || !isLowerHex(sum) {
			return fmt.Sprintf("details.%s names companion %q, not sha256:<hex>", name, ref)
		}
		data, err := readCapped(filepath.Join(dir, "companions", sum), MaxCompanionFile, d.companionFile)
		if err != nil {
			return fmt.Sprintf("companion %s (details.%s) cannot be read: %v", sum, name, err)
		}
		d.companionFile = data // what is kept of it is copied, so the next companion reuses it
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
			return fmt.Sprintf("companion %s (details.%s) does not hash to its name: it was altered", sum, name)
		}
		if !d.companion(name, data, f) {
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				return fmt.Sprintf("companion %s (details.%s) is not JSON: %v", sum, name, err)
			}
			switch name {
			case "target_values":
				f.TargetValues = strs(map[string]any{name: v}, name)
			case "targets":
				f.Targets = strs(map[string]any{name: v}, name)
			case "step_list":
				f.Steps = stepsOf(v)
			case "rule_set":
				f.RuleSet = strs(map[string]any{name: v}, name)
			}
		}
	}
	return ""
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkRestart checks a restart entry: the checkpoint it holds is the previous origin's,
// signed by a log key of the policy, no larger than the entry's own index, and the entries
// before it give that checkpoint's root, so the new origin's log extends what the old one
// signed.
func checkRestart(rep *Report, dir string, ck Checkpoint, vs note.Verifiers, r restart) {
	n, err := note.Open([]byte(r.previous), vs)
	if err != nil {
		rep.fail(r.index, "restart", "the previous log's checkpoint the restart holds does not open under the policy's log keys (list the previous origin's key on a log line too): %v", err)
		return
	}
	prev, err := ParseCheckpoint(n.Text)
	if err != nil {
		rep.fail(r.index, "restart", "the previous log's checkpoint: %v", err)
		return
	}
	switch {
	case prev.Size > r.index:
		rep.fail(r.index, "restart", "it names the previous log's checkpoint of size %d, beyond the restart's own index", prev.Size)
		return
	case prev.Origin == ck.Origin:
		rep.fail(r.index, "restart", "the previous log's origin is this checkpoint's, %q: a restart goes on under a new origin", prev.Origin)
		return
	}
	root, err := rootAt(dir, ck.Size, prev.Size)
	if err != nil || root != prev.Root {
		rep.fail(r.index, "restart", "the first %d entries do not give the root of %s's checkpoint (%v): this log does not extend the one it says it restarts", prev.Size, prev.Origin, err)
		return
	}
	rep.Restarts = append(rep.Restarts, Restarted{Index: r.index, PreviousOrigin: prev.Origin, PreviousSize: prev.Size, Witnessed: r.witnessed})
}

// rootAt is the root of the tree of the archive's first n entries (of a tree of size
// entries), read again from its bundles.
func rootAt(dir string, size, n int64) (tlog.Hash, error) {
	var tree compact
	var failed string
	readArchive(dir, size, false, &budget{limit: companionBudget}, func(k int64, bd *bundle) bool {
		if bd.err != "" {
			failed = bd.err
			return false
		}
		if bd.width == EntriesPerTile && tree.size+EntriesPerTile <= n {
			tree.addSubtree(bd.root, EntriesPerTile)
		} else {
			for i := 0; i < bd.width && tree.size < n; i++ {
				tree.add(bd.leaves[i])
			}
		}
		return tree.size < n
	})
	if tree.size != n {
		return tlog.Hash{}, fmt.Errorf("%d entries read of %d: %s", tree.size, n, failed)
	}
	return tree.root(), nil
}
