package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Alert kinds a monitor raises.
const (
	AlertFork        = "fork"        // two signed checkpoints no single tree makes
	AlertRollback    = "rollback"    // the log shows a smaller tree than it showed before
	AlertStalled     = "stalled"     // the log has not grown for longer than allowed
	AlertCosignature = "cosignature" // the checkpoint lacks the witnesses' quorum
	AlertSignature   = "signature"   // the checkpoint is not signed by the log's key
	AlertUnreachable = "unreachable" // the checkpoint or a tile could not be read
)

// Alert is one thing a monitor found wrong. Saved and Got are the signed checkpoints it
// compared, the evidence to hand on.
type Alert struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Saved   string `json:"saved_checkpoint,omitempty"`
	Got     string `json:"checkpoint,omitempty"`
}

// MonitorState is what a monitor keeps between runs: the last signed checkpoint it accepted,
// and when the log last grew.
type MonitorState struct {
	Checkpoint string    `json:"checkpoint"` // signed note, cosignatures included
	Grew       time.Time `json:"grew"`
	Checked    time.Time `json:"checked"`
}

// Fetch reads one path of a log's public read API (c2sp.org/tlog-tiles): "checkpoint",
// "tile/0/x001/234", "tile/1/000.p/12".
type Fetch func(ctx context.Context, path string) ([]byte, error)

// Monitor checks a log once, from its public checkpoint and hash tiles alone: the
// checkpoint's signature and cosignature quorum under pol, that it extends the checkpoint in
// st (a consistency proof computed from tiles checked against both roots), and that the log
// grew within stall (0: not checked). It returns the alerts and the state to keep: advanced
// only to a checkpoint that passed every check.
func Monitor(ctx context.Context, fetch Fetch, pol Policy, st MonitorState, now time.Time, stall time.Duration) (MonitorState, []Alert) {
	signed, err := fetch(ctx, "checkpoint")
	if err != nil {
		return st, []Alert{{Kind: AlertUnreachable, Message: fmt.Sprintf("read the checkpoint: %v", err)}}
	}
	vs, err := pol.verifiers()
	if err != nil {
		return st, []Alert{{Kind: AlertSignature, Message: err.Error()}}
	}
	n, err := note.Open(signed, vs)
	if err != nil {
		return st, []Alert{{Kind: AlertSignature, Message: fmt.Sprintf("the checkpoint is not signed by the policy's log key: %v", err), Got: string(signed)}}
	}
	ck, err := ParseCheckpoint(n.Text)
	if err != nil {
		return st, []Alert{{Kind: AlertSignature, Message: fmt.Sprintf("the signed checkpoint does not parse: %v", err), Got: string(signed)}}
	}
	if pol.Origin != "" && ck.Origin != pol.Origin {
		return st, []Alert{{Kind: AlertSignature, Message: fmt.Sprintf("the checkpoint names origin %q, the policy %q", ck.Origin, pol.Origin), Got: string(signed)}}
	}
	var alerts []Alert
	cosignErr := pol.cosigned(signed, ck.Origin)
	uncosigned := cosignErr != nil
	if err := cosignErr; err != nil {
		alerts = append(alerts, Alert{Kind: AlertCosignature, Message: fmt.Sprintf("checkpoint of size %d: %v", ck.Size, err), Got: string(signed)})
	}
	next := MonitorState{Checkpoint: string(signed), Grew: st.Grew, Checked: now}
	if st.Checkpoint == "" {
		if uncosigned {
			return st, alerts
		}
		// A first look: nothing to compare with, but the tiles must make the signed root.
		if err := checkTree(ctx, fetch, ck, Checkpoint{}); err != nil {
			return st, []Alert{{Kind: kindOf(err), Message: err.Error(), Got: string(signed)}}
		}
		next.Grew = now
		return next, nil
	}
	prev, err := ReadState([]byte(st.Checkpoint), pol)
	if err != nil {
		return st, append(alerts, Alert{Kind: AlertSignature, Message: fmt.Sprintf("the saved checkpoint: %v", err)})
	}
	switch {
	case ck.Size < prev.Size:
		return st, append(alerts, Alert{Kind: AlertRollback, Message: fmt.Sprintf("the log shows size %d after showing %d: it was rolled back, or is showing this monitor another tree", ck.Size, prev.Size),
			Saved: st.Checkpoint, Got: string(signed)})
	case ck.Size == prev.Size && ck.Root != prev.Root:
		return st, append(alerts, Alert{Kind: AlertFork, Message: fmt.Sprintf("two signed checkpoints of size %d with different roots", ck.Size),
			Saved: st.Checkpoint, Got: string(signed)})
	case ck.Size == prev.Size:
		if stall > 0 && !st.Grew.IsZero() && now.Sub(st.Grew) > stall {
			alerts = append(alerts, Alert{Kind: AlertStalled, Message: fmt.Sprintf("the log has stayed at size %d since %s (over %v)", ck.Size, st.Grew.UTC().Format(time.RFC3339), stall)})
		}
		if uncosigned {
			return st, alerts
		}
		return next, alerts
	}
	if err := checkTree(ctx, fetch, ck, prev); err != nil {
		return st, append(alerts, Alert{Kind: kindOf(err), Message: err.Error(), Saved: st.Checkpoint, Got: string(signed)})
	}
	if uncosigned {
		return st, alerts // consistent, but not cosigned as the policy asks: not accepted yet
	}
	next.Grew = now
	return next, nil
}

// unreachable marks a failure to read, as against a failure to agree.
type unreachable struct{ error }

func kindOf(err error) string {
	if _, ok := err.(unreachable); ok {
		return AlertUnreachable
	}
	return AlertFork
}

// checkTree checks, from the log's hash tiles, that ck's tree extends prev's (a consistency
// proof against both roots), or with prev empty that the tiles make ck's root.
func checkTree(ctx context.Context, fetch Fetch, ck, prev Checkpoint) error {
	tr := &tileFetcher{ctx: ctx, fetch: fetch}
	hr := tlog.TileHashReader(tlog.Tree{N: ck.Size, Hash: ck.Root}, tr)
	if prev.Size == 0 {
		if ck.Size == 0 {
			return nil
		}
		// The newest leaf's inclusion proof reads every tile on the right edge, each checked
		// against the signed root by the hash reader.
		if _, err := tlog.ProveRecord(ck.Size, ck.Size-1, hr); err != nil {
			return tr.explain(err, "the tiles do not make the signed root")
		}
		return nil
	}
	p, err := tlog.ProveTree(ck.Size, prev.Size, hr)
	if err != nil {
		return tr.explain(err, fmt.Sprintf("the tree of size %d is not consistent with the tiles of size %d", prev.Size, ck.Size))
	}
	if err := tlog.CheckTree(p, ck.Size, ck.Root, prev.Size, prev.Root); err != nil {
		return fmt.Errorf("the tree of size %d does not extend the saved one of size %d: %v (a fork)", ck.Size, prev.Size, err)
	}
	return nil
}

// tileFetcher reads hash tiles through a Fetch for tlog's hash reader, which checks each
// against the signed root.
type tileFetcher struct {
	ctx     context.Context
	fetch   Fetch
	readErr error
}

func (t *tileFetcher) Height() int { return TileHeight }

func (t *tileFetcher) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		// tlog names tiles tile/H/L/N; c2sp.org/tlog-tiles leaves the height out.
		path := "tile/" + strings.SplitN(tile.Path(), "/", 3)[2]
		data, err := t.fetch(t.ctx, path)
		if err != nil {
			t.readErr = err
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (t *tileFetcher) SaveTiles([]tlog.Tile, [][]byte) {}

func (t *tileFetcher) explain(err error, what string) error {
	if t.readErr != nil {
		return unreachable{fmt.Errorf("read a tile: %v", t.readErr)}
	}
	return fmt.Errorf("%s: %v (a fork, or tiles rewritten)", what, err)
}

// ParseMonitorState reads a monitor's saved state (empty: a first run).
func ParseMonitorState(b []byte) (MonitorState, error) {
	var st MonitorState
	if len(bytes.TrimSpace(b)) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("not a monitor's state: %w", err)
	}
	return st, nil
}
