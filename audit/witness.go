package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witness is an independent party that cosigns the log's checkpoints (c2sp.org/tlog-witness)
// after checking that each one extends the last it cosigned.
type Witness struct {
	URL      string // base URL; requests go to URL + "/add-checkpoint"
	Verifier *torchwood.CosignatureVerifier
	size     int64 // the size this witness last cosigned, as far as we know
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

// Witnessing sends each new checkpoint to the witnesses and stores their cosignatures.
type Witnessing struct {
	DB        *pgxpool.Pool
	Witnesses []*Witness
	HTTP      *http.Client
	Log       *slog.Logger
	Interval  time.Duration
}

// Run cosigns the newest checkpoint whenever it grows, until ctx ends.
func (w *Witnessing) Run(ctx context.Context) {
	if w.Interval <= 0 {
		w.Interval = time.Second
	}
	var done int64 = -1
	for {
		if text, ck, err := Latest(ctx, w.DB); err == nil && ck.Size > done {
			if w.Cosign(ctx, text, ck) == len(w.Witnesses) {
				done = ck.Size
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Interval):
		}
	}
}

// Cosign asks every witness to cosign the checkpoint and returns how many did.
func (w *Witnessing) Cosign(ctx context.Context, text []byte, ck Checkpoint) int {
	n := 0
	for _, wit := range w.Witnesses {
		line, err := w.add(ctx, wit, text, ck)
		if err != nil {
			w.Log.Warn("witness refused or unreachable", "witness", wit.URL, "size", ck.Size, "err", err)
			continue
		}
		if _, err := w.DB.Exec(ctx, `INSERT INTO audit_cosignatures (size, witness, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			ck.Size, wit.Verifier.Name(), line); err != nil {
			w.Log.Error("store cosignature", "err", err)
			continue
		}
		n++
	}
	return n
}

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
				wit.size = ck.Size
			}
			return line, err
		case http.StatusConflict:
			size, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
			if err != nil || size > ck.Size {
				return "", fmt.Errorf("witness is at size %q, beyond this checkpoint: it saw another history", out)
			}
			wit.size = size
			continue
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
