package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/torchwood"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witness is an independent party that cosigns the log's checkpoints (c2sp.org/tlog-witness)
// after checking that each one extends the last it cosigned.
type Witness struct {
	URL      string // base URL; requests go to URL + "/add-checkpoint"
	Verifier *torchwood.CosignatureVerifier
	size     int64      // the size this witness last cosigned, as far as we know
	signed   Checkpoint // the checkpoint this process last had it cosign
	failing  bool       // the last request failed: retried in the background, not inline
	failures int        // failed requests in a row
	retryAt  time.Time  // the background retry waits until then (capped exponential backoff)
}

// MaxWitnessBackoff caps the wait between background retries of a witness that fails.
const MaxWitnessBackoff = time.Minute

// failed notes a failed request and when the background may try again: 1 s, 2 s, 4 s, … up
// to MaxWitnessBackoff.
func (wit *Witness) failed(now time.Time) {
	wit.failures++
	wait := MaxWitnessBackoff
	if wit.failures < 7 {
		wait = min(time.Second<<(wit.failures-1), MaxWitnessBackoff)
	}
	wit.retryAt = now.Add(wait)
}

// ParseWitness reads "URL VKEY" (VKEY a cosignature/v1 verifier key).
func ParseWitness(s string) (*Witness, error) {
	u, vkey, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return nil, fmt.Errorf("witness %q: want \"URL VKEY\"", s)
	}
	v, err := torchwood.NewCosignatureVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", u, err)
	}
	return &Witness{URL: strings.TrimRight(u, "/"), Verifier: v}, nil
}

// Witnessing sends each new checkpoint to the witnesses and stores their cosignatures. The
// sequencer asks right after it signs (Inline), so a checkpoint and its cosignatures appear
// together; Run retries, in the background, the witnesses that failed.
type Witnessing struct {
	DB        *pgxpool.Pool
	Witnesses []*Witness
	HTTP      *http.Client
	Log       *slog.Logger
	Interval  time.Duration

	mu     sync.Mutex // one exchange with the witnesses at a time: each tracks its size
	done   Checkpoint // the newest checkpoint every witness has cosigned
	forked bool       // a witness has said it holds a tree this log does not extend
}

// Run cosigns the newest checkpoint whenever it grows, until ctx ends.
func (w *Witnessing) Run(ctx context.Context) {
	if w.Interval <= 0 {
		w.Interval = time.Second
	}
	for {
		if text, ck, err := Latest(ctx, w.DB); err == nil {
			w.cosign(ctx, text, ck, background)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Interval):
		}
	}
}

// Inline asks the witnesses that answered last time to cosign the newest checkpoint.
func (w *Witnessing) Inline(ctx context.Context) {
	if text, ck, err := Latest(ctx, w.DB); err == nil {
		w.cosign(ctx, text, ck, inline)
	}
}

// Answered asks every witness that has not cosigned the newest checkpoint to cosign it, and
// reports whether each has answered: cosigned, or refused in a way that halts the log. An
// empty log has nothing to ask about.
func (w *Witnessing) Answered(ctx context.Context) bool {
	text, ck, err := Latest(ctx, w.DB)
	if err != nil || ck.Size == 0 {
		return true
	}
	w.mu.Lock()
	w.forked = false
	w.mu.Unlock()
	n := w.cosign(ctx, text, ck, everyone)
	w.mu.Lock()
	defer w.mu.Unlock()
	return n == len(w.Witnesses) || w.forked
}

// Cosign asks every witness to cosign the checkpoint and returns how many did.
func (w *Witnessing) Cosign(ctx context.Context, text []byte, ck Checkpoint) int {
	return w.cosign(ctx, text, ck, everyone)
}

// Which witnesses an exchange asks.
const (
	everyone   = iota // all that have not cosigned
	inline            // right after signing: only those not failing
	background        // the retries: a failing one once its backoff has passed
)

// cosign asks the witnesses that have not cosigned ck (as whom says) and returns how many
// have. A witness that holds a checkpoint this log does not extend halts the log: the log
// was rolled back (a restored dump) or forked.
func (w *Witnessing) cosign(ctx context.Context, text []byte, ck Checkpoint, whom int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == ck && ck.Size > 0 {
		return len(w.Witnesses)
	}
	n := 0
	for _, wit := range w.Witnesses {
		if wit.signed == ck && ck.Size > 0 {
			n++
			continue
		}
		if wit.failing && (whom == inline || whom == background && time.Now().Before(wit.retryAt)) {
			continue
		}
		line, err := w.add(ctx, wit, text, ck)
		wit.failing = err != nil
		if err != nil {
			wit.failed(time.Now())
		} else {
			wit.failures = 0
		}
		var fork *forkError
		if errors.As(err, &fork) {
			w.forked = true
			problem := fmt.Sprintf("witness %s holds a checkpoint this log does not extend (%v): the log was rolled back or forked; compare its checkpoint with ours", wit.Verifier.Name(), fork)
			w.Log.Error("audit witness: the log does not extend what it cosigned", "witness", wit.URL, "size", ck.Size, "err", err)
			if herr := Halt(ctx, w.DB, problem); herr != nil {
				w.Log.Error("report the witness's refusal", "err", herr)
			}
			continue
		}
		if err != nil {
			w.Log.Warn("witness refused or unreachable", "witness", wit.URL, "size", ck.Size, "failures", wit.failures,
				"retry_in", time.Until(wit.retryAt).Round(time.Second), "err", err)
			continue
		}
		if _, err := w.DB.Exec(ctx, `INSERT INTO audit_cosignatures (size, witness, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			ck.Size, wit.Verifier.Name(), line); err != nil {
			w.Log.Error("store cosignature", "err", err)
			continue
		}
		n++
	}
	if n == len(w.Witnesses) {
		w.done = ck
	}
	return n
}

// forkError is a witness's refusal that only a rollback or a fork explains.
type forkError struct{ msg string }

func (e *forkError) Error() string { return e.msg }

// add sends one add-checkpoint request, retrying once from the size a 409 reports.
func (w *Witnessing) add(ctx context.Context, wit *Witness, text []byte, ck Checkpoint) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		var body bytes.Buffer
		fmt.Fprintf(&body, "old %d\n", wit.size)
		if wit.size > 0 && wit.size < ck.Size {
			p, err := tlog.ProveTree(ck.Size, wit.size, HashReader(ctx, w.DB))
			if err != nil {
				return "", fmt.Errorf("consistency proof from %d: %w", wit.size, err)
			}
			for _, h := range p {
				body.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
			}
		}
		body.WriteString("\n")
		body.Write(text)
		req, err := http.NewRequestWithContext(ctx, "POST", wit.URL+"/add-checkpoint", &body)
		if err != nil {
			return "", err
		}
		hc := w.HTTP
		if hc == nil {
			hc = &http.Client{Timeout: 10 * time.Second}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			line, err := w.check(wit, text, out)
			if err == nil {
				wit.size, wit.signed = ck.Size, ck
			}
			return line, err
		case http.StatusConflict:
			size, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
			if err != nil {
				return "", fmt.Errorf("witness answered 409 without a size: %q", out)
			}
			if size > ck.Size {
				return "", &forkError{fmt.Sprintf("it cosigned size %d; this log's newest checkpoint has %d", size, ck.Size)}
			}
			wit.size = size
			continue
		case http.StatusUnprocessableEntity:
			// Only sent for a proof from a size it cosigned: that tree is not this one's prefix.
			return "", &forkError{fmt.Sprintf("the tree of size %d it cosigned is not a prefix of this log's tree of size %d: %s", wit.size, ck.Size, bytes.TrimSpace(out))}
		default:
			return "", fmt.Errorf("witness answered %s: %s", resp.Status, bytes.TrimSpace(out))
		}
	}
	return "", fmt.Errorf("witness kept disagreeing about its size")
}

// check verifies the cosignature line the witness returned.
func (w *Witnessing) check(wit *Witness, text, resp []byte) (string, error) {
	for _, line := range strings.Split(string(resp), "\n") {
		if !strings.HasPrefix(line, "— ") {
			continue
		}
		signed := append(bytes.TrimRight(text, "\n"), []byte("\n"+line+"\n")...)
		n, err := note.Open(signed, note.VerifierList(wit.Verifier))
		if err == nil && len(n.Sigs) > 0 {
			return line, nil
		}
	}
	return "", fmt.Errorf("no valid cosignature from %s in the answer", wit.Verifier.Name())
}

// WithCosignatures returns the checkpoint note with the witnesses' cosignature lines added.
func WithCosignatures(ctx context.Context, q Querier, text []byte, size int64) ([]byte, error) {
	rows, err := q.Query(ctx, `SELECT line FROM audit_cosignatures WHERE size = $1 ORDER BY witness`, size)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := bytes.TrimRight(text, "\n")
	out = append(out[:len(out):len(out)], '\n')
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		out = append(out, line+"\n"...)
	}
	return out, rows.Err()
}

// Settled returns the newest checkpoint with the cosignatures it has gathered, once the
// witnesses have caught up with it: the sequencer asks them right after signing, so a
// checkpoint with fewer cosignatures than the one before is waited for (up to settleWait),
// and past that the one before is returned. Exports and proofs use it, so that an auditor's
// policy requiring witnesses does not fail on a checkpoint signed a moment earlier.
func Settled(ctx context.Context, q Querier) ([]byte, Checkpoint, error) {
	deadline := time.Now().Add(settleWait)
	for {
		rows, err := q.Query(ctx, `SELECT c.size, c.note, (SELECT count(*) FROM audit_cosignatures s WHERE s.size = c.size)
			FROM audit_checkpoints c ORDER BY c.size DESC LIMIT 2`)
		if err != nil {
			return nil, Checkpoint{}, fmt.Errorf("read newest checkpoints: %w", err)
		}
		type head struct {
			size  int64
			note  string
			count int64
		}
		heads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (head, error) {
			var h head
			return h, r.Scan(&h.size, &h.note, &h.count)
		})
		if err != nil {
			return nil, Checkpoint{}, fmt.Errorf("read newest checkpoints: %w", err)
		}
		if len(heads) == 0 {
			return nil, Checkpoint{}, fmt.Errorf("read newest checkpoint: %w", pgx.ErrNoRows)
		}
		pick := heads[0]
		if len(heads) == 2 && heads[0].count < heads[1].count {
			if time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return nil, Checkpoint{}, ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			pick = heads[1]
		}
		ck, err := ParseCheckpoint(pick.note)
		if err != nil {
			return nil, ck, err
		}
		text, err := WithCosignatures(ctx, q, []byte(pick.note), pick.size)
		return text, ck, err
	}
}

// settleWait is how long Settled waits for the witnesses to cosign the newest checkpoint.
const settleWait = 3 * time.Second
