package web

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// keysView is the "my keys" page: the reader's signing keys and the passkey registration.
type keysView struct {
	Keys []service.PersonalKey
	// User is the WebAuthn user entity the registration script creates a passkey for.
	User string
}

// passkeyRef is an active passkey as a decision form's script needs it.
type passkeyRef struct {
	Key          string `json:"key"`
	CredentialID string `json:"credential_id"`
}

// origin is where the browser reaches this server: the origin a passkey is bound to.
func (s *Server) origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || s.Secure {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request) {
	s.showKeys(w, r, http.StatusOK, nil)
}

func (s *Server) showKeys(w http.ResponseWriter, r *http.Request, status int, refused error) {
	a := actorOf(r)
	p := s.frame(r, "my keys")
	ks, err := s.Keys(r.Context(), a, a.ID)
	if err != nil {
		refused = err
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
	user, _ := json.Marshal(map[string]string{"id": a.ID, "name": a.Username, "display": a.Username})
	s.render(w, r, status, keysPage(p, keysView{Keys: ks, User: string(user)}))
}

// keyStatement answers, for the registration script, the statement a new passkey signs to
// prove it is held.
func (s *Server) keyStatement(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	pub, err := audit.ParsePasskey(r.PostFormValue("public_key"))
	if err != nil {
		s.jsonError(w, r, &measure.FieldError{Field: "public_key", Message: err.Error()})
		return
	}
	st := audit.Statement{Person: a.ID, Op: audit.OpRegisterKey, Digest: audit.KeyID(audit.KeyPasskey, pub), Time: time.Now().UTC().Truncate(time.Second)}
	s.statementJSON(w, r, st)
}

// proposeKey proposes the passkey the registration script made, with its proof.
func (s *Server) proposeKey(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	p := service.KeyProposal{Kind: audit.KeyPasskey, PublicKey: r.PostFormValue("public_key"), CredentialID: r.PostFormValue("credential_id"),
		Label: strings.TrimSpace(r.PostFormValue("label"))}
	if err := json.Unmarshal([]byte(r.PostFormValue("proof")), &p.Proof); err != nil {
		err := &measure.FieldError{Field: "proof", Message: "is missing: register the passkey with the button (the page's script signs the proof)"}
		s.Refused(r.Context(), actorOf(r), service.On{}, "key.propose", err)
		s.showKeys(w, r, http.StatusBadRequest, err)
		return
	}
	if _, err := s.ProposeKey(r.Context(), actorOf(r), p, s.origin(r)); err != nil {
		s.showKeys(w, r, 0, err)
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "key proposed"))
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

// revokeKey revokes one of the reader's keys, or, for an administrator, proposes or applies
// revoking another's.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "-" { // the lost-key form names the key in a field
		id = strings.TrimSpace(r.PostFormValue("id"))
	}
	_, err := s.RevokeKey(r.Context(), actorOf(r), id, r.PostFormValue("reason"))
	back := "/keys"
	if r.PostFormValue("back") == "admin" {
		back = "/admin#keys"
	}
	if err != nil {
		if back != "/keys" {
			s.showAdmin(w, r, 0, err, adminView{})
			return
		}
		s.showKeys(w, r, 0, err)
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// approveKey puts another person's proposed key in force (administrators).
func (s *Server) approveKey(w http.ResponseWriter, r *http.Request) {
	sig, err := approvalSignature(r)
	if err != nil {
		s.Refused(r.Context(), actorOf(r), service.On{}, "key.approve", err)
		s.showAdmin(w, r, http.StatusBadRequest, err, adminView{})
		return
	}
	if _, err := s.ApproveKey(r.Context(), actorOf(r), r.PathValue("id"), sig); err != nil {
		s.showAdmin(w, r, 0, err, adminView{})
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/admin#keys", http.StatusSeeOther)
}

// statement answers, for a decision form's script, the statement the decision as typed makes:
// the page shows it in words with its hash before the person touches their passkey.
func (s *Server) statement(w http.ResponseWriter, r *http.Request) {
	if err := readActionForm(w, r); err != nil {
		s.jsonError(w, r, err)
		return
	}
	in, err := actionInput(r.PostForm)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	st, err := s.Statement(r.Context(), actorOf(r), r.PathValue("measure"), authz.Op(r.PathValue("op")), in)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.statementJSON(w, r, st)
}

// approvalStatement answers, for an approval form's script, the statement the approval makes.
func (s *Server) approvalStatement(op authz.Op, subject string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, err := s.ApprovalStatement(r.Context(), actorOf(r), op, r.PathValue(subject))
		if err != nil {
			s.jsonError(w, r, err)
			return
		}
		s.statementJSON(w, r, st)
	}
}

// approvalSignature reads an approval form's signature, when its script made one.
func approvalSignature(r *http.Request) (*audit.Signature, error) {
	raw := r.PostFormValue("signature")
	if raw == "" {
		return nil, nil
	}
	sig := &audit.Signature{}
	if err := json.Unmarshal([]byte(raw), sig); err != nil {
		return nil, &measure.FieldError{Field: "signature", Message: "is not the signature this page's script makes"}
	}
	return sig, nil
}

func (s *Server) statementJSON(w http.ResponseWriter, r *http.Request, st audit.Statement) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"words": statementWords(language(r), st), "sha256": hex.EncodeToString(st.Hash()),
		"challenge": st.Challenge(), "time": st.Time.UTC().Format(time.RFC3339)})
}

func (s *Server) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	e := s.Classify(r.Context(), err)
	p, status := s.problemFor(language(r), e)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": p.Headline + " " + p.Message})
}

// statementWords says a statement in the page's language.
func statementWords(lang string, st audit.Statement) string {
	at := st.Time.In(service.JST).Format("2006-01-02 15:04:05 JST")
	if lang == English {
		return st.Words()
	}
	switch st.Op {
	case audit.OpRegisterKey:
		return fmt.Sprintf("私 %s は、署名鍵 %s を保持し、自分の決定の署名に登録します（%s）。", st.Person, st.Digest, at)
	case audit.OpApproveKey:
		return fmt.Sprintf("私 %s は、%s の署名鍵 %s を、その人の決定の署名用として承認します（%s）。", st.Person, st.Body, st.Digest, at)
	case audit.OpApprovePolicy:
		return fmt.Sprintf("私 %s は、ポリシー %s（規則一式の SHA-256 %s）を承認します（%s）。", st.Person, st.Body, st.Digest, at)
	case audit.OpApproveRoleChange:
		return fmt.Sprintf("私 %s は、アカウント変更 %s（%s）を承認します（%s）。", st.Person, st.Digest, st.Body, at)
	case string(authz.OpLogSteps):
		return fmt.Sprintf("私 %s は、措置 %s 第%d版について、一覧の実施を記録します（一覧の SHA-256 %s）（%s）。", st.Person, st.Measure, st.Version, st.Body, at)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "私 %s は、措置 %s 第%d版（ダイジェスト %s）について「%s」", st.Person, st.Measure, st.Version, st.Digest, opName(lang, authz.Op(st.Op)))
	if st.Decision != "" {
		fmt.Fprintf(&b, "を「%s」と", T(lang, st.Decision))
	}
	fmt.Fprintf(&b, "決定します（%s）。", at)
	if len(st.Conditions) > 0 {
		fmt.Fprintf(&b, "条件: %s。", strings.Join(st.Conditions, "／"))
	}
	if len(st.Checklist) > 0 {
		var reqs []string
		for _, c := range st.Checklist {
			reqs = append(reqs, T(lang, "req:"+c))
		}
		fmt.Fprintf(&b, "確認した要件: %s。", strings.Join(reqs, "、"))
	}
	if st.Body != "" {
		fmt.Fprintf(&b, "本文: %s ", st.Body)
	}
	if st.Reason != "" {
		fmt.Fprintf(&b, "理由: %s", st.Reason)
	}
	return b.String()
}

// signing is what a measure page's decision forms need to be signed: the reader's active
// passkeys, and the operations the policy in force requires them to sign.
type signing struct {
	Passkeys string // JSON list of passkeyRef
	Has      bool
	Pending  bool // a passkey waits for an administrator's approval
	Required map[authz.Op]bool
}

func (s *Server) signingFor(r *http.Request, ops []authz.Op) signing {
	a := actorOf(r)
	sg := signing{Passkeys: "[]", Required: map[authz.Op]bool{}}
	rules := s.Policy().Rules
	for _, op := range ops {
		sg.Required[op] = authz.MustSign(rules, op, a.Roles)
	}
	ks, err := s.Keys(r.Context(), a, a.ID)
	if err != nil {
		return sg
	}
	var refs []passkeyRef
	for _, k := range ks {
		if k.Kind == audit.KeyPasskey && k.State == "active" {
			refs = append(refs, passkeyRef{Key: k.ID, CredentialID: k.CredentialID})
		}
		sg.Pending = sg.Pending || k.State == "pending"
	}
	if len(refs) > 0 {
		b, _ := json.Marshal(refs)
		sg.Passkeys, sg.Has = string(b), true
	}
	return sg
}

// signedBy is the key a decision's record says its taker signed it with, or "".
func signedBy(r audit.Entry) string {
	sig, _ := r.Details["signature"].(map[string]any)
	k, _ := sig["key"].(string)
	return k
}

func (s *Server) notificationsPage(w http.ResponseWriter, r *http.Request) {
	s.showNotifications(w, r, http.StatusOK, nil, "")
}

func (s *Server) showNotifications(w http.ResponseWriter, r *http.Request, status int, refused error, secret string) {
	a := actorOf(r)
	p := s.frame(r, "my notifications")
	prefs, err := s.NotificationPrefsOf(r.Context(), a)
	if err == nil {
		var ns []service.Notice
		ns, err = s.MyNotifications(r.Context(), a)
		if refused == nil {
			refused = err
		}
		if refused != nil {
			var st int
			p.Error, st = s.problemOf(r, p.Lang, refused)
			if status == 0 || status == http.StatusOK {
				status = st
			}
		}
		s.render(w, r, status, notificationsPage(p, notificationsView{Prefs: prefs, Notices: ns, Secret: secret}))
		return
	}
	p.Error, status = s.problemOf(r, p.Lang, err)
	s.render(w, r, status, notificationsPage(p, notificationsView{}))
}

// saveNotifications saves the reader's choices; a new webhook's secret is shown once.
func (s *Server) saveNotifications(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.showNotifications(w, r, http.StatusBadRequest, &measure.FieldError{Field: "form", Message: "is not a form this page sent"}, "")
		return
	}
	p := service.NotificationPrefs{Email: r.PostFormValue("email"), WebhookURL: r.PostFormValue("webhook_url"), Kinds: r.PostForm["kinds"]}
	saved, err := s.SetNotificationPrefs(r.Context(), actorOf(r), p)
	if err != nil {
		s.showNotifications(w, r, 0, err, "")
		return
	}
	if saved.WebhookSecret != "" {
		s.showNotifications(w, r, http.StatusOK, nil, saved.WebhookSecret)
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/notifications", http.StatusSeeOther)
}
