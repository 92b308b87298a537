package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of the log's tiles (c2sp.org/tlog-tiles).
const TileHeight = 8

// EntriesPerTile is the number of entries in a full entry bundle.
const EntriesPerTile = 1 << TileHeight

// Querier is what reads need of a pool, connection or transaction.
type Querier interface {
	QueryRow(context.Context, string, ...any) pgx.Row
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// TilePath is the c2sp.org/tlog-tiles path of a tile, without the leading "tile/". Level -1
// names an entry bundle. Width 256 is a full tile.
func TilePath(level int, n int64, width int) string {
	var b strings.Builder
	if level < 0 {
		b.WriteString("entries/")
	} else {
		b.WriteString(strconv.Itoa(level) + "/")
	}
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	b.WriteString(s)
	if width < EntriesPerTile {
		b.WriteString(".p/" + strconv.Itoa(width))
	}
	return b.String()
}

// ParseTilePath reads a path written by TilePath.
func ParseTilePath(p string) (level int, n int64, width int, err error) {
	bad := fmt.Errorf("malformed tile path %q", p)
	width = EntriesPerTile
	if i := strings.Index(p, ".p/"); i >= 0 {
		w, err := strconv.Atoi(p[i+3:])
		if err != nil || w < 1 || w >= EntriesPerTile || strconv.Itoa(w) != p[i+3:] {
			return 0, 0, 0, bad
		}
		width, p = w, p[:i]
	}
	parts := strings.Split(p, "/")
	if len(parts) < 2 {
		return 0, 0, 0, bad
	}
	if parts[0] == "entries" {
		level = -1
	} else if level, err = strconv.Atoi(parts[0]); err != nil || level < 0 || level > 63 || strconv.Itoa(level) != parts[0] {
		return 0, 0, 0, bad
	}
	for i, g := range parts[1:] {
		last := i == len(parts)-2
		if !last {
			if !strings.HasPrefix(g, "x") {
				return 0, 0, 0, bad
			}
			g = g[1:]
		}
		if len(g) != 3 {
			return 0, 0, 0, bad
		}
		d, err := strconv.Atoi(g)
		if err != nil || d < 0 {
			return 0, 0, 0, bad
		}
		n = n*1000 + int64(d)
	}
	return level, n, width, nil
}

// ReadTile returns the hashes of tile (level, n) at the given width, from the narrowest
// stored version at least that wide.
func ReadTile(ctx context.Context, q Querier, level int, n int64, width int) ([]byte, error) {
	var data []byte
	err := q.QueryRow(ctx, `SELECT data FROM audit_tiles WHERE level = $1 AND n = $2 AND width >= $3 ORDER BY width LIMIT 1`,
		level, n, width).Scan(&data)
	if err != nil {
		return nil, fmt.Errorf("read tile %s: %w", TilePath(level, n, width), err)
	}
	return data[:width*tlog.HashSize], nil
}

// readWidest returns the widest stored version of tile (level, n), at least width wide.
func readWidest(ctx context.Context, q Querier, level int, n int64, width int) ([]byte, error) {
	var data []byte
	err := q.QueryRow(ctx, `SELECT data FROM audit_tiles WHERE level = $1 AND n = $2 AND width >= $3 ORDER BY width DESC LIMIT 1`,
		level, n, width).Scan(&data)
	if err != nil {
		return nil, fmt.Errorf("read tile %s: %w", TilePath(level, n, width), err)
	}
	return data, nil
}

// ReadEntries returns the entry bundle (level -1 tile) n at the given width: each canonical
// record prefixed by its length as a big-endian uint16.
func ReadEntries(ctx context.Context, q Querier, n int64, width int) ([]byte, error) {
	rows, err := q.Query(ctx, `SELECT e.record FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id
		WHERE l.idx >= $1 AND l.idx < $2 ORDER BY l.idx`, n*EntriesPerTile, n*EntriesPerTile+int64(width))
	if err != nil {
		return nil, fmt.Errorf("read entry bundle %d: %w", n, err)
	}
	defer rows.Close()
	var out []byte
	count := 0
	for rows.Next() {
		var rec []byte
		if err := rows.Scan(&rec); err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(rec)))
		out = append(out, rec...)
		count++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if count != width {
		return nil, fmt.Errorf("entry bundle %s: %w", TilePath(-1, n, width), pgx.ErrNoRows)
	}
	return out, nil
}

// SplitBundle splits an entry bundle into its records.
func SplitBundle(data []byte) ([][]byte, error) { return appendBundle(nil, data) }

// appendBundle appends the entries of an entry bundle to out.
func appendBundle(out [][]byte, data []byte) ([][]byte, error) {
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, errors.New("entry bundle: truncated length")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, errors.New("entry bundle: truncated entry")
		}
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out, nil
}

// dbHashReader reads stored hashes from the tiles in PostgreSQL, through a cache holding the
// tree's right edge and the batch being sequenced.
type dbHashReader struct {
	ctx   context.Context
	q     Querier
	cache map[int64]tlog.Hash
	tiles map[[2]int64][]byte // tiles read so far, by level and number: each is read once
}

func (r *dbHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if h, ok := r.cache[idx]; ok {
			out[i] = h
			continue
		}
		t := tlog.TileForIndex(TileHeight, idx)
		data, ok := r.tiles[[2]int64{int64(t.L), t.N}]
		if !ok || len(data) < t.W*tlog.HashSize {
			var err error
			if data, err = readWidest(r.ctx, r.q, t.L, t.N, t.W); err != nil {
				return nil, err
			}
			if r.tiles == nil {
				r.tiles = map[[2]int64][]byte{}
			}
			r.tiles[[2]int64{int64(t.L), t.N}] = data
		}
		t.W = len(data) / tlog.HashSize
		h, err := tlog.HashFromTile(t, data, idx)
		if err != nil {
			return nil, err
		}
		r.cache[idx] = h
		out[i] = h
	}
	return out, nil
}

// HashReader reads the stored hashes of the log in PostgreSQL (for proofs).
func HashReader(ctx context.Context, q Querier) tlog.HashReader {
	return &dbHashReader{ctx: ctx, q: q, cache: map[int64]tlog.Hash{}}
}
