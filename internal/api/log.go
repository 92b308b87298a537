package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// RegisterLog adds the audit log's read API (c2sp.org/tlog-tiles, tlog-proof). Checkpoints,
// hash tiles and proofs need no token: witnesses, monitors and the public check with them that
// the log never forked. Entry bundles hold the records themselves (case titles, targets,
// people): they are served to authenticated auditors only, each read audited.
func (s *Server) RegisterLog(mux Mux) {
	mux.HandleFunc("GET /checkpoint", s.checkpoint)
	mux.HandleFunc("GET /tile/{path...}", s.tile)
	mux.HandleFunc("GET /proof/{index}", s.proof)
	mux.HandleFunc("GET /proof/consistency", s.consistency)
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	text, ck, err := audit.Latest(r.Context(), s.DB)
	if errors.Is(err, pgx.ErrNoRows) {
		http.Error(w, "no checkpoint yet", http.StatusNotFound)
		return
	}
	if err == nil {
		text, err = audit.WithCosignatures(r.Context(), s.DB, text, ck.Size)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(text)
}

// auditorRead admits an authenticated auditor (auditing the read) and answers anyone else: 401
// without a token, 403 (audited) with one.
func (s *Server) auditorRead(w http.ResponseWriter, r *http.Request, what string) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "entry bundles hold the records: auditors only, with Authorization: Bearer <token>"})
		return false
	}
	a, _, err := s.actorByToken(r.Context(), token)
	if errors.Is(err, pgx.ErrNoRows) {
		s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "unknown, expired or revoked token"})
		return false
	}
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	r = r.WithContext(context.WithValue(r.Context(), actorKey{}, a))
	if !a.Has(authz.Auditor) {
		err := &authz.Denied{Rule: "need-to-know", Reason: "the log's records are read by auditors"}
		s.refused(r.Context(), a, "", "", "read."+what, "", err)
		s.fail(w, r, err)
		return false
	}
	if err := s.mayRead(r, authz.Subject{}, what, "", ""); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

func (s *Server) tile(w http.ResponseWriter, r *http.Request) {
	level, n, width, err := audit.ParseTilePath(r.PathValue("path"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var data []byte
	if level < 0 {
		if !s.auditorRead(w, r, "log_entries") {
			return
		}
		data, err = audit.ReadEntries(r.Context(), s.DB, n, width)
	} else {
		data, err = audit.ReadTile(r.Context(), s.DB, level, n, width)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		http.Error(w, "no such tile", http.StatusNotFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if width == audit.EntriesPerTile {
		// Full tiles never change.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(data)
}

// proof serves a c2sp.org/tlog-proof document for one entry against the newest checkpoint.
func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	index, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || index < 0 {
		http.Error(w, "index must be a non-negative integer", http.StatusBadRequest)
		return
	}
	text, ck, err := audit.Latest(ctx, s.DB)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if index >= ck.Size {
		http.Error(w, fmt.Sprintf("index %d is not in the newest checkpoint (size %d) yet", index, ck.Size), http.StatusNotFound)
		return
	}
	p, err := tlog.ProveRecord(ck.Size, index, audit.HashReader(ctx, s.DB))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(audit.FormatProof(index, p, text))
}

// consistency serves the hashes proving that the tree of size old is a prefix of the tree of
// size new (default: the newest checkpoint), one base64 hash per line.
func (s *Server) consistency(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, ck, err := audit.Latest(ctx, s.DB)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	oldSize, err1 := strconv.ParseInt(r.URL.Query().Get("old"), 10, 64)
	newSize := ck.Size
	var err2 error
	if v := r.URL.Query().Get("new"); v != "" {
		newSize, err2 = strconv.ParseInt(v, 10, 64)
	}
	if err1 != nil || err2 != nil || oldSize < 1 || oldSize > newSize || newSize > ck.Size {
		http.Error(w, fmt.Sprintf("need 1 <= old <= new <= %d", ck.Size), http.StatusBadRequest)
		return
	}
	p, err := tlog.ProveTree(newSize, oldSize, audit.HashReader(ctx, s.DB))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var b strings.Builder
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
