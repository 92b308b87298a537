package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
)

func record(i int) *audit.Record {
	return &audit.Record{Actor: audit.Actor{ID: "u-executor", Roles: []string{"executor"}, Org: "npa-cyber"}, Action: "bench.step",
		Details: map[string]any{"n": i, "target": "203.0.113.10", "result": "success"}}
}

// parallel runs producers goroutines, each calling fn(producer, round) rounds times, and
// returns the elapsed time.
func parallel(producers, rounds int, fn func(p, r int) error) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Go(func() {
			for r := range rounds {
				if err := fn(p, r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

// sample is an append's commit time and its entry.
type sample struct {
	at time.Time
	id string
}

// caughtUp waits until the sequencer has covered every entry.
func caughtUp(b *testing.B, db *pgxpool.Pool) {
	for {
		var pending int
		if err := db.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM audit_entries) - COALESCE((SELECT max(size) FROM audit_checkpoints), 0)`).Scan(&pending); err != nil {
			b.Fatal(err)
		}
		if pending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpointLatencies waits for the sequencer to cover every entry, stops it, and returns, in
// order, how long after its commit each sampled entry first appeared in a signed checkpoint.
func checkpointLatencies(b *testing.B, db *pgxpool.Pool, stop func(), samples []sample) []time.Duration {
	ctx := context.Background()
	caughtUp(b, db)
	stop()
	var lat []time.Duration
	for _, s := range samples {
		var at time.Time
		if err := db.QueryRow(ctx, `SELECT min(c.created_at) FROM audit_log l JOIN audit_checkpoints c ON c.size > l.idx WHERE l.entry_id = $1`, s.id).Scan(&at); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, at.Sub(s.at))
	}
	slices.Sort(lat)
	return lat
}

// BenchmarkAppend measures durable appends by 64 producers, in transactions of 100 records
// and of one record, while the sequencer runs, against raw PostgreSQL baselines measured in the
// same run: COPY of the same rows into a plain table, and pgbench's single-row commit rate.
// It also reports the p99 time from an append's commit to its inclusion in a signed checkpoint.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	db, seq, _ := newLog(b)
	const producers = 64
	rounds := max(b.N, 20)
	// pgbench first, before this benchmark's pool holds its connections.
	pgbench := pgbenchRate(b, db)
	pool, err := pgxpool.NewWithConfig(ctx, func() *pgxpool.Config { c := db.Config(); c.MaxConns = producers + 4; return c }())
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE plain (id text PRIMARY KEY, key text UNIQUE, measure_id text, created_at timestamptz, record bytea)`); err != nil {
		b.Fatal(err)
	}

	// Baseline: the same rows, COPY into a plain table.
	canon, _ := record(0).Canonical()
	copyTime, err := parallel(producers, rounds, func(p, r int) error {
		rows := make([][]any, 100)
		for i := range rows {
			id := fmt.Sprintf("%d-%d-%d", p, r, i)
			rows[i] = []any{id, id, nil, time.Now(), canon}
		}
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"plain"}, []string{"id", "key", "measure_id", "created_at", "record"}, pgx.CopyFromRows(rows))
			return err
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	copyRate := float64(producers*rounds*100) / copyTime.Seconds()

	// Ours: AppendBatch of 100 records per transaction, with the sequencer running.
	seqCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = seq.Run(seqCtx) }()
	var mu sync.Mutex
	var samples []sample
	batchTime, err := parallel(producers, rounds, func(p, r int) error {
		recs := make([]audit.Keyed, 100)
		for i := range recs {
			recs[i] = audit.Keyed{Key: fmt.Sprintf("b/%d/%d/%d", p, r, i), Record: record(i)}
		}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return testAppender.AppendBatch(ctx, tx, recs) }); err != nil {
			return err
		}
		mu.Lock()
		samples = append(samples, sample{time.Now(), recs[99].Record.ID})
		mu.Unlock()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	batchRate := float64(producers*rounds*100) / batchTime.Seconds()

	// One record per transaction, against pgbench's single-row commit rate, once the sequencer
	// has caught up with the burst above (it keeps running, sequencing these as they come).
	lat := checkpointLatencies(b, pool, func() {}, samples)
	singleRounds := rounds * 10
	singleTime, err := parallel(producers, singleRounds, func(p, r int) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return testAppender.Append(ctx, tx, fmt.Sprintf("s/%d/%d", p, r), record(r)) })
	})
	if err != nil {
		b.Fatal(err)
	}
	singleRate := float64(producers*singleRounds) / singleTime.Seconds()

	stop()
	<-done
	p99 := lat[len(lat)*99/100]

	b.ReportMetric(batchRate, "rec/s-batch100")
	b.ReportMetric(batchRate/copyRate, "ratio-vs-copy")
	b.ReportMetric(singleRate, "rec/s-single")
	if pgbench > 0 {
		b.ReportMetric(singleRate/pgbench, "ratio-vs-pgbench")
	}
	b.ReportMetric(p99.Seconds(), "s-p99-to-checkpoint")
	b.Logf("COPY baseline %.0f rec/s; pgbench single-row commits %.0f/s", copyRate, pgbench)
}

// pgbenchRate runs pgbench with 64 clients committing one-row inserts for 5 s.
func pgbenchRate(b *testing.B, pool *pgxpool.Pool) float64 {
	if _, err := exec.LookPath("pgbench"); err != nil {
		b.Log("pgbench not installed: no single-row baseline")
		return 0
	}
	if _, err := pool.Exec(context.Background(), `CREATE TABLE plain1 (id text PRIMARY KEY, record bytea)`); err != nil {
		b.Fatal(err)
	}
	// The same work as one Append in its own transaction: BEGIN, one insert, COMMIT.
	script := filepath.Join(b.TempDir(), "insert.sql")
	os.WriteFile(script, []byte("BEGIN;\nINSERT INTO plain1 VALUES (gen_random_uuid()::text, repeat('x', 200)::bytea);\nCOMMIT;\n"), 0o644)
	cfg := pool.Config().ConnConfig
	out, err := exec.Command("pgbench", "-n", "-c", "64", "-j", "2", "-T", "5", "-f", script,
		"-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), cfg.Database).CombinedOutput()
	if err != nil {
		b.Logf("pgbench failed, no single-row baseline: %v\n%s", err, out)
		return 0
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("pgbench output: %s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps
}

// writeArchive writes an archive of the n records gen makes and its signed checkpoint,
// without a database: what Export would write of a log of them.
func writeArchive(b testing.TB, dir string, n int, gen func(i int) *audit.Record) (vkey string, bytesTotal int64) {
	_, signer, vkey := newLogKeyOnly(b)
	_, bytesTotal = writeSigned(b, dir, n, gen, signer)
	return vkey, bytesTotal
}

// writeSigned is writeArchive with the log's signer given, so that two archives can be two
// checkpoints of one log. A record that already has a salt keeps it (and so its leaf hash).
func writeSigned(b testing.TB, dir string, n int, gen func(i int) *audit.Record, signer note.Signer) (ck audit.Checkpoint, bytesTotal int64) {
	mem := &memTree{}
	var bundle []byte
	for i := range n {
		r := gen(i)
		r.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if r.TS.IsZero() {
			r.TS = time.Unix(1764000000, 0).UTC()
		}
		r.V, r.Log = audit.Version, audit.LogName
		if r.Salt == "" {
			r.Salt = audit.NewSalt()
		}
		if r.PolicyVersion == "" {
			r.PolicyVersion = audit.PolicyVersion
		}
		spill(b, dir, r)
		c, err := r.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		if err := mem.add(int64(i), c); err != nil {
			b.Fatal(err)
		}
		bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(c)))
		bundle = append(bundle, c...)
		bytesTotal += int64(len(c))
		if (i+1)%audit.EntriesPerTile == 0 || i == n-1 {
			k := int64(i / audit.EntriesPerTile)
			w := i%audit.EntriesPerTile + 1
			p := filepath.Join(dir, "tile", filepath.FromSlash(audit.TilePath(-1, k, w)))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, bundle, 0o644); err != nil {
				b.Fatal(err)
			}
			bundle = bundle[:0]
		}
	}
	// The hash tiles, as Export writes them: the verifier reads them to name altered entries.
	for _, t := range tlog.NewTiles(audit.TileHeight, 0, int64(n)) {
		data, err := tlog.ReadTileData(t, mem)
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(dir, "tile", filepath.FromSlash(audit.TilePath(t.L, t.N, t.W)))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	root, _ := tlog.TreeHash(int64(n), mem)
	ck = audit.Checkpoint{Origin: signer.Name(), Size: int64(n), Root: root} // the signer names its log
	signed, err := note.Sign(&note.Note{Text: ck.Text()}, signer)
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "checkpoint"), signed, 0o644)
	return ck, bytesTotal
}

// spill moves a record's long lists to companion files, as the appender does in the database.
func spill(b testing.TB, dir string, r *audit.Record) {
	moved := map[string]any{}
	for _, name := range []string{"target_values", "targets", "step_list"} {
		v, ok := r.Details[name]
		if !ok {
			continue
		}
		data, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		if len(data) < 4096 {
			continue
		}
		sum := sha256.Sum256(data)
		name2 := hex.EncodeToString(sum[:])
		os.MkdirAll(filepath.Join(dir, "companions"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "companions", name2), data, 0o644); err != nil {
			b.Fatal(err)
		}
		moved[name] = "sha256:" + name2
	}
	if len(moved) == 0 {
		return
	}
	details := map[string]any{audit.Companions: moved}
	for k, v := range r.Details {
		if _, ok := moved[k]; !ok {
			details[k] = v
		}
	}
	r.Details = details
}

// stepRecord is an execution step logged one per record, with details the replay does not read.
func stepRecord(i int) *audit.Record {
	r := record(i)
	r.TS = time.Time{}
	return r
}

// lifecycleRecord makes logs of whole measures, after the executors' designations: first a
// botnet takedown approved for botnet targets and executed in batches of 5,000 steps (its
// lists in companion files), then measures of 100 records each: the approval path of story,
// 88 more step batches, and the end of execution. Most records (submissions, votes,
// decisions, step batches) carry details the replay reads.
func lifecycleRecord(t0 time.Time, botnet int) func(i int) *audit.Record {
	tmpl, ds := story(t0), designations(t0)
	const batch = 5_000
	values := make([]string, botnet)
	for i := range values {
		values[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
	}
	batches := (botnet + batch - 1) / batch
	big := 10 + batches + 1 // the botnet measure's records
	return func(i int) *audit.Record {
		if i < len(ds) { // the executors' designations first
			return &ds[i]
		}
		i -= len(ds)
		if botnet > 0 && i < big {
			r := tmpl[min(i, 10)]
			switch {
			case i == 1:
				r.Details = maps.Clone(r.Details)
				r.Details["target_values"] = values
			case i >= 10 && i < 10+batches:
				lo := (i - 10) * batch
				targets := values[lo:min(lo+batch, botnet)]
				list := make([]map[string]any, len(targets))
				for k, target := range targets {
					list[k] = map[string]any{"target": target, "witness": "ex2", "at": r.TS.Format(time.RFC3339Nano)}
				}
				r.Details = map[string]any{"targets": targets, "step_list": list}
			case i == big-1:
				r = tmpl[11]
			}
			r.Measure = "m-botnet"
			return &r
		}
		if botnet > 0 {
			i -= big
		}
		j := i % 100
		r := tmpl[min(j, 10)]
		if j == 99 {
			r = tmpl[11]
		}
		r.Measure = fmt.Sprintf("m-%d", i/100)
		return &r
	}
}

// BenchmarkVerifyArchive verifies a whole archive offline (TAKEDOWN_BENCH_RECORDS records,
// default 1,000,000), every step checked, against a bare SHA-256 pass over the same files in
// one run. The lifecycle archive opens with a botnet takedown of TAKEDOWN_BENCH_BOTNET targets
// (default 700,000).
func BenchmarkVerifyArchive(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TAKEDOWN_BENCH_RECORDS")); err == nil {
		n = v
	}
	botnet := 700_000
	if v, err := strconv.Atoi(os.Getenv("TAKEDOWN_BENCH_BOTNET")); err == nil {
		botnet = v
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, bc := range []struct {
		name string
		gen  func(int) *audit.Record
	}{{"steps", stepRecord}, {"lifecycles", lifecycleRecord(t0, botnet)}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			vkey, _ := writeArchive(b, dir, n, bc.gen)
			pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
			b.ResetTimer()
			var verify, bare time.Duration
			for range b.N {
				start := time.Now()
				rep, err := audit.VerifyArchive(dir, pol, nil)
				if err != nil || !rep.OK() {
					b.Fatalf("%v %v", err, rep.Failures[:min(len(rep.Failures), 5)])
				}
				verify += time.Since(start)
				start = time.Now()
				for _, sub := range []string{filepath.Join("tile", "entries"), "companions"} {
					filepath.Walk(filepath.Join(dir, sub), func(p string, info os.FileInfo, err error) error {
						if err == nil && !info.IsDir() {
							data, _ := os.ReadFile(p)
							sha256.Sum256(data)
						}
						return nil
					})
				}
				bare += time.Since(start)
			}
			b.ReportMetric(float64(n*b.N)/verify.Seconds(), "rec/s-verify")
			b.ReportMetric(float64(n*b.N)/bare.Seconds(), "rec/s-sha256")
			b.ReportMetric(bare.Seconds()/verify.Seconds(), "ratio")
		})
	}
}

// BenchmarkVerifyProof verifies one record's tlog-proof (signature and inclusion) in a
// 1,000,000-entry tree.
func BenchmarkVerifyProof(b *testing.B) {
	const n = 1 << 20
	mem := &memTree{}
	rec, _ := record(1).Canonical()
	for i := range n {
		data := rec
		if i != 123456 {
			data = []byte(strconv.Itoa(i))
		}
		mem.add(int64(i), data)
	}
	root, _ := tlog.TreeHash(n, mem)
	p, _ := tlog.ProveRecord(n, 123456, mem)
	_, signer, vkey := newLogKeyOnly(b)
	signed, _ := note.Sign(&note.Note{Text: audit.Checkpoint{Origin: origin, Size: n, Root: root}.Text()}, signer)
	doc := audit.FormatProof(123456, p, signed)
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	b.ResetTimer()
	for range b.N {
		if _, _, err := audit.VerifyProof(doc, rec, pol); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSequence measures the sequencer alone: batches of up to 1,024 waiting entries
// indexed, tiled and checkpointed, against COPY of the same index rows into a plain table.
func BenchmarkSequence(b *testing.B) {
	ctx := context.Background()
	db, seq, _ := newLog(b)
	n := max(b.N, 50) * 1024
	for i := 0; i < n; i += 1024 {
		recs := make([]audit.Keyed, 1024)
		for j := range recs {
			recs[j] = audit.Keyed{Key: fmt.Sprintf("q/%d", i+j), Record: record(j)}
		}
		if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return testAppender.AppendBatch(ctx, tx, recs) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	batches := 0
	for {
		k, err := seq.Step(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if k == 0 {
			break
		}
		batches++
	}
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "rec/s")
	b.ReportMetric(el.Seconds()*1000/float64(batches), "ms/batch")
}

// BenchmarkCheckpointLatency measures the time from an append's commit to its inclusion in a
// signed checkpoint under a steady load below the sequencer's capacity: 16 producers each
// committing 100 records every 100 ms (16,000 records/s) for 5 s.
func BenchmarkCheckpointLatency(b *testing.B) {
	ctx := context.Background()
	db, seq, _ := newLog(b)
	seqCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = seq.Run(seqCtx) }()
	var mu sync.Mutex
	var samples []sample
	b.ResetTimer()
	_, err := parallel(16, 50, func(p, r int) error {
		next := time.Now().Add(100 * time.Millisecond)
		recs := make([]audit.Keyed, 100)
		for i := range recs {
			recs[i] = audit.Keyed{Key: fmt.Sprintf("l/%d/%d/%d", p, r, i), Record: record(i)}
		}
		if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return testAppender.AppendBatch(ctx, tx, recs) }); err != nil {
			return err
		}
		mu.Lock()
		samples = append(samples, sample{time.Now(), recs[99].Record.ID})
		mu.Unlock()
		time.Sleep(time.Until(next))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	lat := checkpointLatencies(b, db, func() { stop(); <-done }, samples)
	b.ReportMetric(lat[len(lat)/2].Seconds(), "s-p50")
	b.ReportMetric(lat[len(lat)*99/100].Seconds(), "s-p99")
}

// BenchmarkTrust times the sequencer's start-up check of a log of TAKEDOWN_BENCH_TRUST entries
// (default 1,000,000): open the newest signed checkpoint, re-hash every entry, compare leaf
// hashes, leaf tiles and the root. Seconds to ready.
func BenchmarkTrust(b *testing.B) {
	ctx := context.Background()
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TAKEDOWN_BENCH_TRUST")); err == nil {
		n = v
	}
	db, seq, vkey := newLog(b)
	for i := 0; i < n; i += 1024 {
		recs := make([]audit.Keyed, min(1024, n-i))
		for j := range recs {
			recs[j] = audit.Keyed{Key: fmt.Sprintf("t/%d", i+j), Record: record(j)}
		}
		if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return testAppender.AppendBatch(ctx, tx, recs) }); err != nil {
			b.Fatal(err)
		}
		if _, err := seq.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	drain(b, seq)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		ck, err := audit.Trust(ctx, db, []string{vkey})
		if err != nil || ck.Size != int64(n) {
			b.Fatalf("trust: %v (size %d)", err, ck.Size)
		}
	}
	el := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(el.Seconds(), "s-to-ready")
	b.ReportMetric(float64(n)/el.Seconds(), "entries/s")
}
