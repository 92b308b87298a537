package service

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// LogKeys returns the note verifier keys the server checks the log with, and where they come
// from: "configuration" (its own signing key's) or "database" (the key history the log
// records: a convenience for the page, not a proof; auditors verify with their own policy).
func (s *Service) logKeys(ctx context.Context) ([]string, string, error) {
	if len(s.LogKeys) > 0 {
		return s.LogKeys, "configuration", nil
	}
	rows, err := s.DB.Query(ctx, `SELECT vkey FROM audit_keys ORDER BY first_size`)
	if err != nil {
		return nil, "", fmt.Errorf("read the log's keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, "", fmt.Errorf("read the log's keys: %w", err)
	}
	return keys, "database", nil
}

// LogStatus is the audit page's head: the newest checkpoint with its cosignatures, the keys
// that check it and the policy file an auditor starts from.
type LogStatus struct {
	Checkpoint string   `json:"checkpoint"`
	Keys       []string `json:"keys"`
	KeysFrom   string   `json:"keys_from"`
	Policy     string   `json:"policy"`
}

// LogStatus returns the log's newest signed checkpoint and its keys. Both are public.
func (s *Service) LogStatus(ctx context.Context) (LogStatus, error) {
	ck, err := s.Checkpoint(ctx)
	if err != nil {
		return LogStatus{}, err
	}
	keys, from, err := s.logKeys(ctx)
	if err != nil {
		return LogStatus{}, err
	}
	st := LogStatus{Checkpoint: string(ck), Keys: keys, KeysFrom: from, Policy: audit.AuditorPolicy(keys, s.WitnessKeys)}
	return st, nil
}

// ExportLog makes the whole log into a gzipped tar of what `takedownd audit export` writes
// (checkpoint, tiles, entry bundles, companions) under the directory name, for an auditor to
// verify offline, and returns it to read (closing it removes it). The export is recorded in
// the log before a byte leaves.
func (s *Service) ExportLog(ctx context.Context, a authz.Actor, name string) (io.ReadCloser, audit.Checkpoint, error) {
	if !a.Has(authz.Auditor) {
		return nil, audit.Checkpoint{}, s.refuse(ctx, a, On{}, "audit.exported", &authz.Denied{Rule: "need-to-know", Reason: "the log's records are read by auditors"})
	}
	dir, err := os.MkdirTemp("", "takedown-export-")
	if err != nil {
		return nil, audit.Checkpoint{}, fmt.Errorf("export the log: %w", err)
	}
	defer os.RemoveAll(dir)
	ck, err := audit.Export(ctx, s.DB, filepath.Join(dir, "log"))
	if err != nil {
		return nil, ck, fmt.Errorf("export the log: %w", err)
	}
	f, err := os.CreateTemp("", "takedown-export-*.tar.gz")
	if err != nil {
		return nil, ck, fmt.Errorf("export the log: %w", err)
	}
	if err := writeTarGz(f, filepath.Join(dir, "log"), name); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, ck, fmt.Errorf("write the export: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		return s.append(ctx, tx, a, "audit.exported/"+NewID(""), &audit.Record{Action: "audit.exported",
			Details: map[string]any{"size": ck.Size, "root": ck.Root.String(), "to": "web download"}})
	})
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, ck, fmt.Errorf("record the export: %w", err)
	}
	return &removeOnClose{f}, ck, nil
}

type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	os.Remove(r.Name())
	return err
}

// writeTarGz writes the files under dir into w as a gzipped tar, under the directory name.
func writeTarGz(w io.Writer, dir, name string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name + "/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	return err
}
