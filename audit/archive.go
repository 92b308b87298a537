package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Export writes the log as an auditor carries it away: dir/checkpoint (the newest signed
// checkpoint the witnesses have caught up with, with their cosignatures; see Settled) and dir/tile/... (every hash tile and entry bundle it covers, at the paths of
// c2sp.org/tlog-tiles). It returns the checkpoint.
func Export(ctx context.Context, q Querier, dir string) (Checkpoint, error) {
	text, ck, err := Settled(ctx, q)
	if err != nil {
		return ck, err
	}
	write := func(rel string, data []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	// Every tile a tree of this size has, full or partial.
	for _, t := range tlog.NewTiles(TileHeight, 0, ck.Size) {
		data, err := ReadTile(ctx, q, t.L, t.N, t.W)
		if err != nil {
			return ck, err
		}
		if err := write("tile/"+TilePath(t.L, t.N, t.W), data); err != nil {
			return ck, fmt.Errorf("export tile: %w", err)
		}
	}
	for n := int64(0); n*EntriesPerTile < ck.Size; n++ {
		w := int(min(EntriesPerTile, ck.Size-n*EntriesPerTile))
		data, err := ReadEntries(ctx, q, n, w)
		if err != nil {
			return ck, err
		}
		if err := write("tile/"+TilePath(-1, n, w), data); err != nil {
			return ck, fmt.Errorf("export entries: %w", err)
		}
	}
	// Companion data of the exported records, by content address.
	rows, err := q.Query(ctx, `SELECT sha256, content FROM audit_companions ORDER BY sha256`)
	if err != nil {
		return ck, fmt.Errorf("read companions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sum string
		var data []byte
		if err := rows.Scan(&sum, &data); err != nil {
			return ck, fmt.Errorf("read companions: %w", err)
		}
		if err := write("companions/"+sum, data); err != nil {
			return ck, fmt.Errorf("export companion: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return ck, fmt.Errorf("read companions: %w", err)
	}
	// What an auditor must not miss: a standing halt, and with it a newer checkpoint the log
	// signed than the one exported (one the witnesses refused: a rollback or fork may stand).
	// Without a halt a newer checkpoint is one the witnesses have yet to cosign: normal.
	problems, err := Halted(ctx, q)
	if err != nil {
		return ck, err
	}
	if len(problems) > 0 {
		if err := write(HaltsFile, []byte(strings.Join(problems, "\n")+"\n")); err != nil {
			return ck, fmt.Errorf("export halts: %w", err)
		}
		if newest, latest, err := Latest(ctx, q); err != nil {
			return ck, err
		} else if latest.Size != ck.Size || latest.Root != ck.Root {
			if err := write(NewestFile, newest); err != nil {
				return ck, fmt.Errorf("export the newest checkpoint: %w", err)
			}
		}
	}
	return ck, write("checkpoint", text)
}

// HaltsFile and NewestFile, in an archive, say that the log was halted when it was exported
// (its standing problems, a line each) and which newer checkpoint it had signed than the one
// exported. `takedown audit verify` fails on either unless told to inspect a halted log.
const (
	HaltsFile  = "halts"
	NewestFile = "newest-checkpoint"
)

// ArchiveRecord returns entry index of an exported archive: the record as it was logged, the
// bytes `takedown audit verify -record` checks against a proof.
func ArchiveRecord(dir string, index int64) ([]byte, error) {
	if index < 0 {
		return nil, fmt.Errorf("index %d is negative", index)
	}
	n, k := index/EntriesPerTile, int(index%EntriesPerTile)
	for w := EntriesPerTile; w > k; w-- {
		data, err := os.ReadFile(filepath.Join(dir, "tile", filepath.FromSlash(TilePath(-1, n, w))))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		entries, err := SplitBundle(data)
		if err != nil {
			return nil, fmt.Errorf("entry bundle %d: %w", n, err)
		}
		if k >= len(entries) {
			return nil, fmt.Errorf("entry bundle %d holds %d entries, not %d", n, len(entries), k+1)
		}
		return entries[k], nil
	}
	return nil, fmt.Errorf("entry %d is not in the archive %s", index, dir)
}
