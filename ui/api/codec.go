package api

import (
	"net/http"
	"strings"

	"github.com/takedown/takedown/internal/refusal"
)

// maxCodecBody bounds one decode request (a page of Temporal's history view).
const maxCodecBody = 16 << 20

// RegisterCodec adds the payload codec endpoint Temporal's UI and CLI call to show histories
// in clear (`temporal workflow show --codec-endpoint <url>/api/v1/codec --codec-auth "Bearer
// <token>"`): decoding only, for auditors. Encoding is not offered: nobody outside the service
// has cause to put sealed payloads into a history. origins, when set, are the browser origins
// (Temporal's UI) allowed to call it.
func (s *Server) RegisterCodec(mux Mux, codec http.Handler, origins []string) {
	cors := func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		for _, allowed := range origins {
			if o != "" && o == allowed {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", o)
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
				h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
				h.Add("Vary", "Origin")
			}
		}
	}
	mux.HandleFunc("OPTIONS /api/v1/codec/decode", func(w http.ResponseWriter, r *http.Request) {
		cors(w, r)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/v1/codec/decode", func(w http.ResponseWriter, r *http.Request) {
		cors(w, r)
		s.auth(func(w http.ResponseWriter, r *http.Request) {
			a := actorOf(r)
			if err := s.MayDecodePayloads(r.Context(), a); err != nil {
				s.fail(w, r, err)
				return
			}
			if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
				s.fail(w, r, refusal.New(refusal.Invalid, "send the payloads as application/json"))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxCodecBody)
			s.Log.InfoContext(r.Context(), "workflow payloads decoded for an auditor", "user", a.Username, "namespace", headerForLog(r.Header.Get("X-Namespace")))
			codec.ServeHTTP(w, r)
		})(w, r)
	})
}

// headerForLog keeps a header fit for a log line.
func headerForLog(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
