package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/takedown/takedown/internal/intel"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
)

// importPageSize is how many targets the preview page lists at once.
const importPageSize = 200

// importFile takes a STIX bundle or MISP event from the draft page's form and shows its
// preview: nothing is added yet.
func (s *Server) importFile(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	id := r.PathValue("measure")
	r.Body = http.MaxBytesReader(w, r.Body, intel.MaxBytes+1<<20)
	file, hdr, err := r.FormFile("file")
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = refusal.New(refusal.TooLarge, "the file is over %d bytes; at most %d are imported", intel.MaxBytes, intel.MaxBytes)
		} else {
			err = &measure.FieldError{Field: "file", Message: "choose a STIX 2.1 bundle or a MISP event (JSON, at most 128 MiB)"}
		}
		s.Refused(r.Context(), a, service.On{Measure: id}, "targets.import", err)
		s.sendBack(w, r, id, "import_targets", err, "#import-targets")
		return
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, intel.MaxBytes+1))
	if err != nil {
		s.sendBack(w, r, id, "import_targets", err, "#import-targets")
		return
	}
	p, err := s.ImportFile(r.Context(), a, id, r.PostFormValue("format"), hdr.Filename, data)
	if err != nil {
		s.sendBack(w, r, id, "import_targets", err, "#import-targets")
		return
	}
	http.Redirect(w, r, "/imports/"+url.PathEscape(p.ID), http.StatusSeeOther)
}

// importPreview shows what confirming an import would add, as it would now.
func (s *Server) importPreview(w http.ResponseWriter, r *http.Request) {
	s.showImport(w, r, 0, nil)
}

func (s *Server) showImport(w http.ResponseWriter, r *http.Request, status int, refused error) {
	p := s.frame(r, "import preview")
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	ip, err := s.Import(r.Context(), actorOf(r), r.PathValue("id"), service.Page{Limit: importPageSize, Offset: offset})
	if err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
		s.render(w, r, status, importPage(p, importView{}))
		return
	}
	if refused != nil {
		var st int
		p.Error, st = s.problemOf(r, p.Lang, refused)
		if status == 0 {
			status = st
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	v := importView{ImportPreview: ip, Offset: offset}
	if offset > 0 {
		v.Prev = "?offset=" + strconv.Itoa(max(offset-importPageSize, 0))
	}
	if offset+importPageSize < ip.Counts.Targets {
		v.Next = "?offset=" + strconv.Itoa(offset+importPageSize)
	}
	s.render(w, r, status, importPage(p, v))
}

// importView is the preview page.
type importView struct {
	service.ImportPreview
	Offset     int
	Prev, Next string
}

// confirmImport adds what the preview shown listed.
func (s *Server) confirmImport(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	m, err := s.ConfirmImport(r.Context(), actorOf(r), r.PathValue("id"), r.PostFormValue("targets_sha256"))
	if err != nil {
		s.showImport(w, r, 0, err)
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "imported"))
	http.Redirect(w, r, "/measures/"+url.PathEscape(m.ID)+"#targets", http.StatusSeeOther)
}

// said is a message from the importer (a reason, a note) in the page's language, when the
// catalogue says it.
func said(lang, msg string) string {
	if s, ok := say(lang, msg); ok {
		return s
	}
	// A field's path before the message (value: …) stays as written; the message is said.
	if m := fieldPrefix.FindStringSubmatch(msg); m != nil {
		if s, ok := say(lang, m[2]); ok {
			return m[1] + ": " + s
		}
	}
	return msg
}

// exportSTIX sends a closed measure as a STIX 2.1 bundle file.
func (s *Server) exportSTIX(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("measure")
	wrote := false
	fw := writerFunc(func(p []byte) (int, error) {
		if !wrote {
			wrote = true
			w.Header().Set("Content-Type", "application/stix+json;version=2.1")
			w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.stix.json"`)
		}
		return w.Write(p)
	})
	if err := s.ExportSTIX(r.Context(), actorOf(r), id, r.URL.Query().Get("tlp"), fw); err != nil {
		if wrote {
			panic(http.ErrAbortHandler) // too late for a status: the file is cut short
		}
		s.sendBack(w, r, id, "export_stix", err, "#share")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// measureReport shows a measure's file as one printable document (?lang=ja|en: the page's
// language by default).
func (s *Server) measureReport(w http.ResponseWriter, r *http.Request) {
	p, v, rep, err := s.report(r)
	if err != nil {
		// Shown here: the measure's page would refuse the same reader (a dead end).
		s.refused(w, r, "measure report", err)
		return
	}
	s.render(w, r, http.StatusOK, reportDoc(p, v, rep, ""))
}

// measureReportPDF prints the same document to PDF with the server's Chromium.
func (s *Server) measureReportPDF(w http.ResponseWriter, r *http.Request) {
	p, v, rep, err := s.report(r)
	if err != nil {
		s.refused(w, r, "measure report", err)
		return
	}
	css, _ := static.ReadFile("static/report.css")
	var b strings.Builder
	if err := reportDoc(p, v, rep, string(css)).Render(r.Context(), &b); err != nil {
		s.sendBack(w, r, r.PathValue("measure"), "report", err, "")
		return
	}
	// One Chromium at a time: each is a dozen processes and a few hundred megabytes.
	for !s.printing.TryLock() {
		select {
		case <-r.Context().Done():
			s.sendBack(w, r, r.PathValue("measure"), "report", refusal.New(refusal.Unavailable, "other reports are being printed: try again in a moment"), "")
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	pdf, err := printPDF(r.Context(), b.String())
	s.printing.Unlock()
	if err != nil {
		s.Log.ErrorContext(r.Context(), "print a report to PDF", "err", err)
		s.sendBack(w, r, r.PathValue("measure"), "report",
			refusal.New(refusal.Unavailable, "the PDF could not be printed (the server needs Chromium: apt-get install chromium); print the HTML report from the browser instead"), "")
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rep.Measure.ID+"-"+p.Lang+`.pdf"`)
	_, _ = w.Write(pdf)
}

func (s *Server) report(r *http.Request) (page, measureView, service.MeasureReport, error) {
	p := s.frame(r, "measure report")
	if l := strings.ToLower(r.URL.Query().Get("lang")); l == Japanese || l == English {
		p.Lang = l
	}
	rep, err := s.Report(r.Context(), actorOf(r), r.PathValue("measure"))
	return p, measureView{Dossier: rep.Dossier, Lang: p.Lang}, rep, err
}
