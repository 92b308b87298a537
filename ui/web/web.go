// Package web is takedown's web pages: server-rendered templ components over the same service
// layer as the JSON API (internal/service), so a decision taken in the browser gets the same
// authorization, validation and audit entry as one sent to the API. Every action works without
// JavaScript.
//
// Sessions are server-side, in PostgreSQL (alexedwards/scs with a pgx store), renewed at login,
// with idle and absolute timeouts. State-changing requests from another origin are refused
// (http.CrossOriginProtection); cookies are SameSite=Lax and HttpOnly. Every answer carries a
// content security policy with no inline script or style.
package web

import (
	"context"
	"embed"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/ui"
	"github.com/takedown/takedown/ui/signon"
)

//go:embed static
var static embed.FS

// Session timeouts.
const (
	IdleTimeout     = 30 * time.Minute
	SessionLifetime = 12 * time.Hour
)

// Server serves the pages.
type Server struct {
	*service.Service
	// printing admits one report printed to PDF at a time.
	printing sync.Mutex
	// SSO, when configured, offers single sign-on on the login page.
	SSO *signon.Provider
	// Secure says people reach the pages over HTTPS (served here or by a proxy in front):
	// cookies are Secure and pages send HSTS.
	Secure   bool
	sessions *scs.SessionManager
}

// New returns the web pages over svc, with sessions in db.
func New(svc *service.Service, db *pgxpool.Pool) *Server {
	sm := scs.New()
	sm.Store = &sessionStore{db: db}
	sm.IdleTimeout, sm.Lifetime = IdleTimeout, SessionLifetime
	sm.Cookie.Name = "takedown_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Path = "/"
	srv := &Server{Service: svc, sessions: sm}
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil {
			return // the browser went away; nobody to answer
		}
		svc.Log.ErrorContext(r.Context(), "web session", "path", r.URL.Path, "err", err)
		http.Error(w, "the session could not be saved; try again", http.StatusInternalServerError)
	}
	return srv
}

// Mux is where routes are registered (an *http.ServeMux).
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Register adds the pages to mux.
func (s *Server) Register(mux Mux) {
	routes := []struct {
		pattern string
		h       http.Handler
	}{
		{"GET /{$}", s.signedIn(s.work)},
		{"GET /login", http.HandlerFunc(s.loginForm)},
		{"POST /login", http.HandlerFunc(s.login)},
		{"GET /login/sso", http.HandlerFunc(s.ssoLogin)},
		{"GET /enrol", http.HandlerFunc(s.enrolForm)},
		{"POST /enrol", http.HandlerFunc(s.enrol)},
		{"POST /logout", http.HandlerFunc(s.logout)},
		{"GET /lang", http.HandlerFunc(s.setLanguage)},
		{"GET /cases", s.signedIn(s.cases)},
		{"GET /cases/new", s.signedIn(s.newCase)},
		{"GET /cases/{case}", s.signedIn(s.caseView)},
		{"POST /cases", s.signedIn(s.createCase)},
		{"GET /measures/new", s.signedIn(s.newMeasure)},
		{"POST /measures", s.signedIn(s.createMeasure)},
		{"GET /measures", s.signedIn(s.measures)},
		{"GET /measures/{measure}", s.signedIn(s.measure)},
		{"GET /measures/{measure}/edit", s.signedIn(s.editPlan)},
		{"POST /measures/{measure}/plan", s.signedIn(s.savePlan)},
		{"POST /measures/{measure}/evidence", s.signedIn(s.addEvidence)},
		{"POST /measures/{measure}/targets/remove", s.signedIn(s.removeTargets)},
		{"POST /measures/{measure}/import", s.signedIn(s.importFile)},
		{"GET /imports/{id}", s.signedIn(s.importPreview)},
		{"GET /measures/{measure}/stix", s.signedIn(s.exportSTIX)},
		{"GET /measures/{measure}/report", s.signedIn(s.measureReport)},
		{"GET /measures/{measure}/report.pdf", s.signedIn(s.measureReportPDF)},
		{"POST /imports/{id}/confirm", s.signedIn(s.confirmImport)},
		{"POST /measures/{measure}/act/{op}", s.signedIn(s.act)},
		{"POST /measures/{measure}/statement/{op}", s.signedIn(s.statement)},
		{"GET /keys", s.signedIn(s.keysPage)},
		{"GET /notifications", s.signedIn(s.notificationsPage)},
		{"POST /notifications", s.signedIn(s.saveNotifications)},
		{"POST /keys", s.signedIn(s.proposeKey)},
		{"POST /keys/statement", s.signedIn(s.keyStatement)},
		{"POST /keys/{id}/revoke", s.signedIn(s.revokeKey)},
		{"POST /admin/keys/{id}/approve", s.signedIn(s.approveKey)},
		{"POST /admin/keys/{id}/statement", s.signedIn(s.approvalStatement(authz.OpApproveKey, "id"))},
		{"GET /measures/{measure}/log/{index}", s.signedIn(s.inclusion)},
		{"GET /evidence/{sha256}", s.signedIn(s.evidenceFile)},
		{"GET /statistics", s.signedIn(s.statistics)},
		{"GET /statistics.csv", s.signedIn(s.statisticsCSV)},
		{"GET /admin", s.signedIn(s.admin)},
		{"POST /admin/changes", s.signedIn(s.proposeChange)},
		{"POST /admin/changes/{id}/approve", s.signedIn(s.approveChange)},
		{"POST /admin/changes/{id}/statement", s.signedIn(s.approvalStatement(authz.OpApproveRoleChange, "id"))},
		{"POST /admin/policy", s.signedIn(s.proposePolicy)},
		{"POST /admin/policy/signing", s.signedIn(s.proposeSigningPolicy)},
		{"POST /admin/policy/{version}/approve", s.signedIn(s.approvePolicy)},
		{"POST /admin/policy/{version}/statement", s.signedIn(s.approvalStatement(authz.OpApprovePolicy, "version"))},
		{"GET /audit", s.signedIn(s.auditPage)},
		{"GET /audit/entry", s.signedIn(s.inclusion)},
		{"POST /audit/export", s.signedIn(s.export)},
		{"GET /static/", http.FileServerFS(static)},
	}
	pages := http.NewServeMux()
	for _, rt := range routes {
		pages.Handle(rt.pattern, rt.h)
	}
	s.sessions.Cookie.Secure = s.Secure
	h := s.headers(http.NewCrossOriginProtection().Handler(s.sessions.LoadAndSave(pages)))
	// The outer mux sends only these patterns here, so the API's routes stay the API's.
	for _, rt := range routes {
		mux.Handle(rt.pattern, h)
	}
}

// headers sets the security headers of every page.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Scripts only from this server (the upload progress), none inline.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if s.Secure || r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

type actorKey struct{}

func actorOf(r *http.Request) authz.Actor {
	a, _ := r.Context().Value(actorKey{}).(authz.Actor)
	return a
}

// signedIn requires a session; without one the browser goes to the login page.
func (s *Server) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := s.sessions.GetString(r.Context(), "user")
		if id == "" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		a, err := s.Actor(r.Context(), id)
		if err != nil {
			_ = s.sessions.Destroy(r.Context())
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	}
}

// frame is the page frame for r.
func (s *Server) frame(r *http.Request, title string) page {
	lang := language(r)
	p := page{Lang: lang, Title: T(lang, title), Path: r.URL.RequestURI()}
	if a := actorOf(r); a.ID != "" {
		p.User, p.Officer, p.Admin = a.Username, a.Has(authz.Officer), a.Has(authz.Admin) || a.Has(authz.Auditor)
	}
	p.Flash = s.sessions.PopString(r.Context(), "flash")
	return p
}

// render writes a component with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.Log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "err", err)
	}
}

// refused answers a page that could not be made with the refusal alone, in the page's frame.
func (s *Server) refused(w http.ResponseWriter, r *http.Request, title string, err error) {
	p := s.frame(r, title)
	s.render(w, r, s.problem(r, &p, err), layout(p))
}

// problem puts err on the page p and returns the status to answer with.
func (s *Server) problem(r *http.Request, p *page, err error) int {
	var status int
	p.Error, status = s.problemOf(r, p.Lang, err)
	return status
}

// problemOf turns an error into what the page shows, and its status.
func (s *Server) problemOf(r *http.Request, lang string, err error) (*problem, int) {
	return s.problemFor(lang, s.Classify(r.Context(), err))
}

// problemFor is what the page shows of a refusal in the contract.
func (s *Server) problemFor(lang string, e *refusal.Error) (*problem, int) {
	p := &problem{Rule: e.Rule, RuleWords: ruleWords(lang, e.Rule), Field: e.Field,
		Headline: T(lang, "refusal:"+e.Code), FieldWords: fieldWords(lang, e.Field)}
	p.Message, p.English = problemDetail(lang, e)
	if e.Code == refusal.NotFound {
		p.Message, p.Headline = "", T(lang, "not found")
	}
	if e.Code == refusal.Internal {
		p.Message = "" // the headline says it; the server's log has the rest
	}
	return p, e.Status
}

func (s *Server) enrolForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, enrolPage(s.frame(r, "first sign-in"), ""))
}

// enrol sets a new user's password with their enrolment code, through the same service call
// as the API's, then sends them to sign in.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	username := r.PostFormValue("username")
	if err := s.Enrol(r.Context(), username, r.PostFormValue("code"), r.PostFormValue("password"), ui.ClientAddress(r)); err != nil {
		p := s.frame(r, "first sign-in")
		status := s.problem(r, &p, err)
		if status == http.StatusUnauthorized {
			p.Error.Headline = "" // the code was wrong; the detail says so
		}
		s.render(w, r, status, enrolPage(p, username))
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "enrolled"))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, loginPage(s.frame(r, "login"), s.SSO.Configured()))
}

// ssoLogin starts a sign-on whose callback opens a browser session.
func (s *Server) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.SSO.Start(w, r, signon.Web); err != nil {
		p := s.frame(r, "login")
		s.render(w, r, s.problem(r, &p, err), loginPage(p, false))
	}
}

// SignOn finishes a sign-on the login page started (the callback is the API door's, which
// hands it here): a session for the identity's account, renewed as at a password login, or
// the login page with the refusal.
func (s *Server) SignOn(w http.ResponseWriter, r *http.Request, id service.Identity, err error) {
	s.headers(s.sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a authz.Actor
		if err == nil {
			a, err = s.SSOActor(r.Context(), id, ui.ClientAddress(r))
		}
		if err == nil {
			err = s.sessions.RenewToken(r.Context())
		}
		if err != nil {
			p := s.frame(r, "login")
			s.render(w, r, s.problem(r, &p, err), loginPage(p, s.SSO.Configured()))
			return
		}
		s.sessions.Put(r.Context(), "user", a.ID)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}))).ServeHTTP(w, r)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	a, err := s.PasswordActor(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"), ui.ClientAddress(r))
	if err != nil {
		p := s.frame(r, "login")
		var status int
		p.Error, status = s.problemOf(r, p.Lang, err)
		if status == http.StatusUnauthorized {
			// Not "sign in first": the person just tried to.
			p.Error.Message, p.Error.English, p.Error.Headline = T(p.Lang, "login failed"), false, ""
		}
		s.render(w, r, status, loginPage(p, false))
		return
	}
	// A new session token at login: a token planted before cannot ride it (no fixation).
	if err := s.sessions.RenewToken(r.Context()); err != nil {
		s.render(w, r, http.StatusInternalServerError, loginPage(s.frame(r, "login"), false))
		return
	}
	s.sessions.Put(r.Context(), "user", a.ID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	_ = s.sessions.Destroy(r.Context())
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// setLanguage remembers the language switch for a year and goes back to the page. It is a
// link (GET): a preference, not a decision, and a link is never restored stale by the
// browser's form memory.
func (s *Server) setLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.URL.Query().Get("to")
	if lang != Japanese && lang != English {
		lang = Japanese
	}
	http.SetCookie(w, &http.Cookie{Name: "lang", Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true,
		Secure: s.Secure || r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath is back when it is a path on this site, else "/". Browsers read a Location as the
// WHATWG URL parser does: it drops tabs and newlines anywhere, takes a backslash for a slash
// and "//host" for another origin; so anything holding those, or any other control
// character, is refused rather than cleaned.
func localPath(back string) string {
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || len(back) > 2048 ||
		strings.ContainsFunc(back, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' || r == ' ' || r == utf8.RuneError }) {
		return "/"
	}
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return back
}
