package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// signer is one signature line of a signed note.
type signer struct{ Name, Kind string }

// signers lists who signed a note: its first signature is the log's, the rest are witnesses'
// cosignatures (c2sp.org/signed-note, tlog-cosignature).
func signers(note string) []signer {
	_, sigs, ok := strings.Cut(note, "\n\n")
	if !ok {
		return nil
	}
	var out []signer
	for _, line := range strings.Split(sigs, "\n") {
		name, ok := strings.CutPrefix(line, "— ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		kind := "witness"
		if len(out) == 0 {
			kind = "log"
		}
		out = append(out, signer{Name: name, Kind: kind})
	}
	return out
}

// auditPage is the log's page: the newest signed checkpoint and its signers for everyone; for
// auditors, an entry's inclusion checked and the archive for offline verification.
func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "audit log")
	st, err := s.LogStatus(r.Context())
	status := http.StatusOK
	if err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
	}
	s.render(w, r, status, auditPage(p, st, actorOf(r).Has(authz.Auditor)))
}

// inclusion shows a log entry checked against the newest checkpoint: a measure's timeline
// entry, or (for auditors) any entry by index.
func (s *Server) inclusion(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "inclusion proof")
	id := r.PathValue("measure")
	raw := r.PathValue("index")
	if raw == "" {
		raw = r.URL.Query().Get("index")
	}
	var in service.Inclusion
	index, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		err = &measure.FieldError{Field: "index", Message: "must be a log index (0, 1, 2, ...)"}
	} else {
		in, err = s.Inclusion(r.Context(), actorOf(r), id, index)
	}
	if err != nil {
		s.render(w, r, s.problem(r, &p, err), layout(p))
		return
	}
	// The two files `takedown audit verify -proof` takes, as the page names them.
	switch r.URL.Query().Get("download") {
	case "proof":
		attach(w, fmt.Sprintf("entry-%d.tlog-proof", in.Index), in.Proof)
		return
	case "record":
		attach(w, fmt.Sprintf("entry-%d.json", in.Index), in.Logged)
		return
	}
	back := ""
	if id != "" {
		back = "/measures/" + id
	}
	s.render(w, r, http.StatusOK, inclusionPage(p, in, back))
}

// export downloads the log as an archive for `takedown audit verify`.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	archive, _, err := s.ExportLog(r.Context(), a, "takedown-log")
	if err != nil {
		s.refused(w, r, "audit log", err)
		return
	}
	defer archive.Close()
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="takedown-log.tar.gz"`)
	if _, err := io.Copy(w, archive); err != nil && r.Context().Err() == nil {
		s.Log.Error("send the log's export", "actor", a.ID, "err", err)
	}
}

// attach answers a small file to save under name.
func attach(w http.ResponseWriter, name, content string) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, _ = io.WriteString(w, content)
}
