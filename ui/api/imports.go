package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/takedown/takedown/internal/intel"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
)

// importFile takes a STIX 2.1 bundle or a MISP event as the request body and answers its
// preview; nothing is added to the draft until the preview is confirmed.
func (s *Server) importFile(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, intel.MaxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = refusal.New(refusal.TooLarge, "the file is over %d bytes; at most %d are imported", intel.MaxBytes, intel.MaxBytes)
			s.Refused(r.Context(), actorOf(r), service.On{Measure: r.PathValue("measure")}, "targets.import", err)
		}
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	p, err := s.ImportFile(r.Context(), actorOf(r), r.PathValue("measure"), q.Get("format"), q.Get("name"), data)
	s.reply(w, r, http.StatusCreated, p, err)
}

// getImport answers an import's preview as importing it would act now; offset and limit page
// its targets.
func (s *Server) getImport(w http.ResponseWriter, r *http.Request) {
	pg, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.Import(r.Context(), actorOf(r), r.PathValue("id"), pg)
	s.reply(w, r, http.StatusOK, p, err)
}

// confirmImport adds what the preview named by targets_sha256 lists.
func (s *Server) confirmImport(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TargetsSHA256 string `json:"targets_sha256"`
	}
	if err := s.decode(w, r, 4<<10, "targets.added", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.ConfirmImport(r.Context(), actorOf(r), r.PathValue("id"), in.TargetsSHA256)
	s.reply(w, r, http.StatusOK, m, err)
}

// exportSTIX answers a closed measure as a STIX 2.1 bundle (?tlp=amber by default), written
// as it is read.
func (s *Server) exportSTIX(w http.ResponseWriter, r *http.Request) {
	tlp := r.URL.Query().Get("tlp")
	if tlp == "" {
		tlp = "amber"
	}
	id := r.PathValue("measure")
	lw := &firstWrite{w: w, header: func() {
		w.Header().Set("Content-Type", "application/stix+json;version=2.1")
		w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.stix.json"`)
	}}
	if err := s.ExportSTIX(r.Context(), actorOf(r), id, tlp, lw); err != nil {
		if !lw.wrote {
			s.fail(w, r, err)
			return
		}
		// Too late for a status: the body is cut short, which a JSON reader notices.
		s.Log.ErrorContext(r.Context(), "STIX export broke off", "measure", id, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// firstWrite sets the headers of a streamed answer when its first byte is written, so an
// error found before then is still answered with its own status.
type firstWrite struct {
	w      io.Writer
	header func()
	wrote  bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.wrote {
		f.wrote = true
		f.header()
	}
	return f.w.Write(p)
}
