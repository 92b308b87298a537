package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
)

// TestServerRefusesTamperedLog: the sequencer's own check, as the database superuser would
// tamper. Each way of rewriting the log is found before anything more is signed, and named by
// table and entries; the halt stands where /healthz and the service see it.
func TestServerRefusesTamperedLog(t *testing.T) {
	t.Parallel() // waits on its own processes and databases more than it computes
	ctx := context.Background()
	// exec runs SQL with the triggers that keep the tables append-only switched off, as the
	// tables' owner or a superuser can.
	exec := func(t *testing.T, db *pgxpool.Pool, sql string) {
		t.Helper()
		for _, table := range []string{"audit_entries", "audit_log", "audit_tiles", "audit_checkpoints"} {
			if _, err := db.Exec(ctx, `ALTER TABLE `+table+` DISABLE TRIGGER USER`); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, c := range []struct {
		name   string
		tamper string
		table  string
		from   int64 // -1: not named
		to     int64
	}{
		{"edit", `UPDATE audit_entries SET record = convert_to(replace(convert_from(record, 'UTF8'), 'test.append', 'test.appEnd'), 'UTF8')
			WHERE id = (SELECT entry_id FROM audit_log WHERE idx = 123)`, "audit_entries", 123, 124},
		{"swap", `UPDATE audit_entries e SET record = o.record FROM audit_log l, audit_log m, audit_entries o
			WHERE l.entry_id = e.id AND l.idx IN (200, 201) AND m.idx = 401 - l.idx AND o.id = m.entry_id`, "audit_entries", 200, 201},
		{"delete", `DELETE FROM audit_log WHERE idx = 300`, "audit_log", 300, 301},
		{"insert beyond the signed size", `INSERT INTO audit_log (idx, entry_id, leaf_hash)
			SELECT 600, id, '\x00'::bytea FROM audit_entries WHERE id NOT IN (SELECT entry_id FROM audit_log) LIMIT 1`, "audit_log", 600, 601},
		{"rewrite with leaf hashes, tiles and root", `UPDATE audit_entries SET record = convert_to(replace(convert_from(record, 'UTF8'), 'test.append', 'test.appEnd'), 'UTF8')
			WHERE id = (SELECT entry_id FROM audit_log WHERE idx = 450);
			UPDATE audit_log SET leaf_hash = sha256('\x00'::bytea || (SELECT record FROM audit_entries WHERE id = audit_log.entry_id)) WHERE idx = 450;
			UPDATE audit_tiles SET data = 'forged' WHERE level = 0 AND n = 1;
			UPDATE audit_checkpoints SET root = '\x00'`, "audit_entries", 400, 500},
		{"a leaf tile", `UPDATE audit_tiles SET data = set_byte(data, 32, get_byte(data, 32) # 255) WHERE level = 0 AND n = 0`, "audit_tiles", 0, 256},
		{"an upper tile", `UPDATE audit_tiles SET data = set_byte(data, 0, get_byte(data, 0) # 255) WHERE level = 1 AND n = 0`, "audit_tiles", -1, -1},
		{"forged newest checkpoint", `INSERT INTO audit_checkpoints (size, root, note) SELECT 700, root, replace(note, E'\n600\n', E'\n700\n') FROM audit_checkpoints WHERE size = 600`,
			"audit_checkpoints", -1, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, seq, vkey := newLog(t)
			// 600 entries in six signed batches, and one more waiting.
			for i := range 6 {
				appendN(t, db, i*100, 100, 100)
				if _, err := seq.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			appendN(t, db, 600, 1, 1)
			if _, err := audit.Trust(ctx, db, []string{vkey}); err != nil {
				t.Fatalf("the honest log: %v", err)
			}
			for _, stmt := range strings.Split(c.tamper, ";\n") {
				exec(t, db, stmt)
			}
			_, err := audit.Trust(ctx, db, []string{vkey})
			var m *audit.Mismatch
			if !errors.As(err, &m) {
				t.Fatalf("after %s the check says %v", c.name, err)
			}
			if m.Table != c.table || (c.from >= 0 && (m.From != c.from || m.To != c.to)) {
				t.Fatalf("after %s: %v; want table %s, entries [%d, %d)", c.name, m, c.table, c.from, c.to)
			}
			// A restarted sequencer signs nothing more, and records why.
			restarted := &audit.Sequencer{DB: db, Signer: seq.Signer, VerifierKeys: []string{vkey}, Origin: seq.Origin, Appender: testAppender, Log: seq.Log}
			if _, err := restarted.Step(ctx); !errors.As(err, &m) {
				t.Fatalf("a restarted sequencer after %s: %v", c.name, err)
			}
			var signed int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_checkpoints WHERE size > 600 AND size <> 700`).Scan(&signed); err != nil || signed != 0 {
				t.Fatalf("signed %d more checkpoints over the tampered log (%v)", signed, err)
			}
			if err := audit.Halt(ctx, db, m.Error()); err != nil {
				t.Fatal(err)
			}
			halts, err := audit.Halted(ctx, db)
			if err != nil || len(halts) != 1 || halts[0] != m.Error() {
				t.Fatalf("the standing halts: %v (%v)", halts, err)
			}
			t.Logf("%s: %v", c.name, m)
		})
	}
}

// TestSequencerRefusesForgedInserts: rows INSERTed into audit_entries around the service, as
// anyone with the database's credentials could, are never signed, whatever they hold: no
// authenticator, one made with another key, or a real entry's record and authenticator
// copied under a new ID. Each is named in a halt, and while it stands nothing at all is
// signed; once an operator clears it, the service's own entries around the forged row are
// signed, the forged row never, and it raises no second halt. A measure's history never shows
// the forged rows.
func TestSequencerRefusesForgedInserts(t *testing.T) {
	t.Parallel() // waits on its own processes and databases more than it computes
	ctx := context.Background()
	other, err := audit.NewAppender(bytes.Repeat([]byte{0x33}, audit.AppendKeySize))
	if err != nil {
		t.Fatal(err)
	}
	// A rule-abiding record, exactly as the service would write it for a role grant.
	grant := func(t *testing.T, db *pgxpool.Pool, a *audit.Appender, key string) {
		t.Helper()
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			return a.Append(ctx, tx, key, &audit.Record{Actor: audit.Actor{ID: "u-admin", Roles: []string{"admin"}, Org: "npa"},
				Action: "role.granted", Measure: "m-1", Details: map[string]any{"user": "u-mallory", "role": "commander"}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		forge  func(t *testing.T, db *pgxpool.Pool) // leaves the forged row named by forged
		forged string
	}{
		{"no authenticator", func(t *testing.T, db *pgxpool.Pool) {
			grant(t, db, testAppender, "forged")
			if _, err := db.Exec(ctx, `UPDATE audit_entries SET auth = NULL WHERE id = $1`, audit.EntryID("forged")); err != nil {
				t.Fatal(err)
			}
		}, audit.EntryID("forged")},
		{"another key's authenticator", func(t *testing.T, db *pgxpool.Pool) {
			grant(t, db, other, "forged")
		}, audit.EntryID("forged")},
		{"a real entry copied under a new ID", func(t *testing.T, db *pgxpool.Pool) {
			grant(t, db, testAppender, "real")
			if _, err := db.Exec(ctx, `INSERT INTO audit_entries (id, key, measure_id, created_at, record, auth)
				SELECT $2, 'copy', measure_id, created_at, record, auth FROM audit_entries WHERE id = $1`,
				audit.EntryID("real"), audit.EntryID("copy")); err != nil {
				t.Fatal(err)
			}
		}, audit.EntryID("copy")},
		{"an authentic record with its measure changed", func(t *testing.T, db *pgxpool.Pool) {
			grant(t, db, testAppender, "forged")
			if _, err := db.Exec(ctx, `UPDATE audit_entries SET record = convert_to(replace(convert_from(record, 'UTF8'), '"m-1"', '"m-2"'), 'UTF8')
				WHERE id = $1`, audit.EntryID("forged")); err != nil {
				t.Fatal(err)
			}
		}, audit.EntryID("forged")},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, seq, vkey := newLog(t)
			seq.VerifierKeys = []string{vkey}
			appendN(t, db, 0, 10, 10)
			drain(t, seq)
			// As the superuser: the trigger that keeps entries unchanged is off for the forgery.
			if _, err := db.Exec(ctx, `ALTER TABLE audit_entries DISABLE TRIGGER USER`); err != nil {
				t.Fatal(err)
			}
			c.forge(t, db)
			appendN(t, db, 10, 5, 5)
			drain(t, seq)
			halts, err := audit.Halted(ctx, db)
			if err != nil || len(halts) != 1 || !strings.Contains(halts[0], c.forged) || !strings.Contains(halts[0], "authenticator") {
				t.Fatalf("the standing halts: %q (%v)", halts, err)
			}
			var held int64
			if err := db.QueryRow(ctx, `SELECT max(size) FROM audit_checkpoints`).Scan(&held); err != nil || held != 11 {
				t.Fatalf("signed %d entries while the halt stood, want the 11 before it (%v)", held, err)
			}
			if _, err := db.Exec(ctx, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test'`); err != nil {
				t.Fatal(err)
			}
			drain(t, seq)
			appendN(t, db, 15, 1, 1)
			drain(t, seq)

			var sequenced bool
			if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE entry_id = $1)`, c.forged).Scan(&sequenced); err != nil || sequenced {
				t.Fatalf("the forged entry was sequenced: %v (%v)", sequenced, err)
			}
			var size int64
			if err := db.QueryRow(ctx, `SELECT max(size) FROM audit_checkpoints`).Scan(&size); err != nil {
				t.Fatal(err)
			}
			if want := int64(16 + 1 + strings.Count(c.name, "copied")); size != want {
				// 16 appended by the tests, the key record, and the real entry a copy was made of
				t.Fatalf("signed %d entries, want %d", size, want)
			}
			if halts, err := audit.Halted(ctx, db); err != nil || len(halts) != 0 {
				t.Fatalf("the forged entry, once its halt was cleared, halted the log again: %q (%v)", halts, err)
			}
			for _, m := range []string{"m-1", "m-2"} {
				entries, err := testAppender.Entries(ctx, db, m)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.ID == c.forged {
						t.Fatalf("the history of %s shows the forged entry", m)
					}
				}
			}
			if _, err := audit.Trust(ctx, db, []string{vkey}); err != nil {
				t.Fatalf("the log as signed: %v", err)
			}
		})
	}
}

// TestEntriesReadInDiskOrder: the start-up check reads entries in the order they lie on disk
// and hands them on in index order, the same as reading each by index; entries put far out of
// order (CLUSTER by their random IDs) are read ahead within the bound and past it by index.
func TestEntriesReadInDiskOrder(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	const n = 700
	appendN(t, db, 0, n, 7)
	drain(t, seq)
	if _, err := db.Exec(ctx, `CLUSTER audit_entries USING audit_entries_pkey`); err != nil {
		t.Fatal(err)
	}
	read := func(f func(fn func(int64, []byte, []byte) error) error) []string {
		t.Helper()
		var out []string
		if err := f(func(idx int64, leaf, record []byte) error {
			out = append(out, fmt.Sprintf("%d %x %x", idx, leaf, record))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := read(func(fn func(int64, []byte, []byte) error) error { return audit.ForEntry(ctx, db, n, fn) })
	if len(want) != n {
		t.Fatalf("%d entries by index, want %d", len(want), n)
	}
	for _, ahead := range []int{1, 10, 100_000} {
		got := read(func(fn func(int64, []byte, []byte) error) error { return audit.ForEntryInOrder(ctx, db, n, ahead, fn) })
		if !slices.Equal(got, want) {
			t.Errorf("read ahead up to %d: %d entries, first difference at %d", ahead, len(got), firstDiff(got, want))
		}
	}
	if ck, err := audit.Trust(ctx, db, []string{vkey}); err != nil || ck.Size != n {
		t.Fatalf("trust after CLUSTER: %v (size %d)", err, ck.Size)
	}
	// An entry the log names deleted from under it: named, as by the join.
	if _, err := db.Exec(ctx, `ALTER TABLE audit_entries DISABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM audit_entries WHERE id = (SELECT entry_id FROM audit_log WHERE idx = 300)`); err != nil {
		t.Fatal(err)
	}
	_, err := audit.Trust(ctx, db, []string{vkey})
	var m *audit.Mismatch
	if !errors.As(err, &m) || m.From != 300 {
		t.Fatalf("an entry deleted: %v", err)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
