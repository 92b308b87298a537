package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// RegisterLog adds the audit log's read API (c2sp.org/tlog-tiles, tlog-proof). Checkpoints,
// hash tiles and proofs need no token; entry bundles are served to authenticated auditors.
func (s *Server) RegisterLog(mux Mux) {
	mux.HandleFunc("GET /checkpoint", s.checkpoint)
	mux.HandleFunc("GET /tile/{path...}", s.tile)
	mux.HandleFunc("GET /proof/{index}", s.proof)
	mux.HandleFunc("GET /proof/consistency", s.consistency)
}

func writeText(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	text, err := s.Checkpoint(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeText(w, text)
}

func (s *Server) tile(w http.ResponseWriter, r *http.Request) {
	var who *authz.Actor
	if token := bearer(r); token != "" && strings.HasPrefix(r.PathValue("path"), "entries/") {
		a, _, err := s.Authenticate(r.Context(), token)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		who = &a
	}
	data, full, err := s.Tile(r.Context(), who, r.PathValue("path"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if full {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(data)
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	doc, err := s.Proof(r.Context(), r.PathValue("index"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeText(w, doc)
}

// consistency serves one base64 hash per line.
func (s *Server) consistency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := s.Consistency(r.Context(), q.Get("old"), q.Get("new"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var b strings.Builder
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	writeText(w, []byte(b.String()))
}

// auditStream answers the signed log's records as JSON lines from ?from= (0 by default);
// ?follow=1 keeps the answer open for records signed later, until the request's deadline.
// streamRefused answers a stream request the handler could not read, audited as the service audits
// the ones it refuses: every refused attempt is in the log.
func (s *Server) streamRefused(w http.ResponseWriter, r *http.Request, err error) {
	s.Refused(r.Context(), actorOf(r), service.On{}, "read.log_stream", err)
	s.fail(w, r, err)
}

func (s *Server) auditStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var from int64
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.streamRefused(w, r, &measure.FieldError{Field: "from", Message: "must be a log index (0 or more)"})
			return
		}
		from = n
	}
	var follow bool
	switch q.Get("follow") {
	case "", "0", "false":
	case "1", "true":
		follow = true
	default:
		s.streamRefused(w, r, &measure.FieldError{Field: "follow", Message: "must be 1 or true (follow), or 0 or false"})
		return
	}
	// The middlewares wrap w without Flusher; the controller reaches the connection.
	lw := &firstWrite{w: flushing{w, http.NewResponseController(w)}, header: func() {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
	}}
	if err := s.AuditStream(r.Context(), actorOf(r), from, follow, lw); err != nil {
		if !lw.wrote {
			s.fail(w, r, err)
			return
		}
		// Too late for a status: the last line says why the stream stops, then it is cut.
		line, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = lw.Write(append(line, '\n'))
		s.Log.ErrorContext(r.Context(), "audit stream broke off", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !lw.wrote {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK) // nothing signed from there yet
	}
}

// flushing sends each write on at once: a follower sees a record when it is signed.
type flushing struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushing) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		_ = f.rc.Flush()
	}
	return n, err
}
