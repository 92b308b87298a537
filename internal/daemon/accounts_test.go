package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/devenv"
	"github.com/takedown/takedown/internal/payload"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// signOn logs username in through the identity provider as a browser would: /auth/oidc/login,
// the provider's authorization endpoint, back to /auth/oidc/callback, which answers a token.
func signOn(t *testing.T, idp *mockoidc.MockOIDC, base, username string, groups ...string) (*client.Client, int) {
	t.Helper()
	return signOnAs(t, idp, base, &mockoidc.MockUser{Subject: "sub-" + username, PreferredUsername: username, Groups: groups})
}

// userInfoOnly is a provider's user whose ID token carries no profile claims: they are
// released at the UserInfo endpoint only (as zitadel's example does; OIDC Core 5.4).
type userInfoOnly struct{ *mockoidc.MockUser }

func (u userInfoOnly) Claims(scope []string, claims *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return claims, nil
}

func signOnAs(t *testing.T, idp *mockoidc.MockOIDC, base string, user mockoidc.User) (*client.Client, int) {
	t.Helper()
	username := user.ID()
	idp.QueueUser(user)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := hc.Get(base + "/auth/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		t.Logf("%s signs on: %s %s", username, resp.Status, body)
		return nil, resp.StatusCode
	}
	var tok service.Token
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	return &client.Client{BaseURL: base, Token: tok.Token}, resp.StatusCode
}

// webSignOn signs username on through the login page's single sign-on link, following the
// redirects as a browser would, and returns where it lands.
func webSignOn(t *testing.T, idp *mockoidc.MockOIDC, base, username string) (int, string) {
	t.Helper()
	idp.QueueUser(&mockoidc.MockUser{Subject: "sub-" + username, PreferredUsername: username})
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := hc.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `href="/login/sso"`) {
		t.Fatalf("the login page offers no single sign-on: %.300s", page)
	}
	resp, err = hc.Get(base + "/login/sso")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// cliSignOn signs username on as `takedown login -sso` does, the test playing the browser:
// it follows the URL the command opens through the provider and back to the command's
// loopback listener. It returns every URL the browser visited.
func cliSignOn(ctx context.Context, idp *mockoidc.MockOIDC, base, username string) (*client.Client, []string, error) {
	idp.QueueUser(&mockoidc.MockUser{Subject: "sub-" + username, PreferredUsername: username})
	var visited []string
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		visited = append(visited, r.URL.String())
		return nil
	}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	browsed := make(chan struct{})
	c, err := client.LoginSSO(ctx, base, "", func(u string) error {
		visited = append(visited, u)
		go func() {
			defer close(browsed)
			if resp, err := browser.Get(u); err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	})
	<-browsed // the browser has its last answer: visited is complete
	return c, visited, err
}

// TestServeFromEmpty: a production installation from nothing. `serve` and `worker` start on an
// empty database; the first two administrators are bootstrapped and enrol; they create an
// organisation and every user, one proposing and the other approving; people sign in through
// an OpenID Connect provider started by the test (or, for one, a local password); a measure
// runs to CLOSED; a retired user is shut out.
func TestServeFromEmpty(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	ctx := context.Background()
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Shutdown()
	tmp, err := devenv.StartTemporal(ctx, devenv.TemporalOptions{LogLevel: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Stop()
	dir := t.TempDir()
	key, appendKey := filepath.Join(dir, "audit.key"), filepath.Join(dir, "append.key")
	if err := audit.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	if err := audit.GenerateAppendKey(appendKey); err != nil {
		t.Fatal(err)
	}
	payloadKey := filepath.Join(dir, "payload.key")
	if _, err := payload.Generate(payloadKey); err != nil {
		t.Fatal(err)
	}
	owner := testdb.New(t)
	role, db := testdb.AppRole(t, owner)
	if err := daemon.Migrate(ctx, owner, role); err != nil {
		t.Fatal(err)
	}
	cfg := daemon.Config{PayloadKey: payloadKey, HTTP: "127.0.0.1:0", DatabaseURL: db, TemporalAddress: tmp.HostPort, Namespace: devenv.Namespace,
		MaxEvidence: 1 << 20, Workflow: workflows.DefaultConfig(), LogOrigin: "takedown.test/audit", SigningKey: key, AppendKey: appendKey,
		PasswordCost: bcrypt.MinCost, OIDCIssuer: idp.Issuer(), OIDCClientID: idp.ClientID, OIDCClientSecret: idp.ClientSecret}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := daemon.TemporalSetup(ctx, cfg, daemon.DefaultRetention, log); err != nil {
		t.Fatal(err)
	}
	// An issuer written otherwise than the provider announces it is refused at start.
	for _, issuer := range []string{strings.TrimSuffix(idp.Issuer(), "/") + "/", strings.TrimSuffix(idp.Issuer(), "/")} {
		if issuer == idp.Issuer() {
			continue
		}
		bad := cfg
		bad.OIDCIssuer = issuer
		if _, err := daemon.Start(ctx, bad, daemon.Serve, log); err == nil || !strings.Contains(err.Error(), "is not the issuer the provider announces") {
			t.Fatalf("serve with -oidc-issuer %q (the provider's is %q): %v", issuer, idp.Issuer(), err)
		}
	}
	w, err := daemon.Start(ctx, cfg, daemon.Worker, log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, err := daemon.Start(ctx, cfg, daemon.Serve, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	anon := &client.Client{BaseURL: s.URL}

	// The first two administrators: bootstrapped, then enrolled with their codes.
	admins := map[string]*client.Client{}
	if _, _, err := service.Bootstrap(ctx, s.DB, s.Appender, "npa", "", "alice", "Alice"); err == nil || !strings.Contains(err.Error(), "org_name") {
		t.Fatalf("a bootstrap into a new organisation without its name: %v", err)
	}
	for _, name := range []string{"alice", "bob"} {
		// As README says: the first names the new organisation, the second joins it.
		orgName := "National Police Agency"
		if name == "bob" {
			if _, _, err := service.Bootstrap(ctx, s.DB, s.Appender, "npa", "Another Agency", name, "Bob"); err == nil || !strings.Contains(err.Error(), "leave -org-name out") {
				t.Fatalf("a bootstrap naming an existing organisation otherwise: %v", err)
			}
			orgName = ""
		}
		_, code, err := service.Bootstrap(ctx, s.DB, s.Appender, "npa", orgName, name, name+" (administrator)")
		if err != nil {
			t.Fatal(err)
		}
		pw := "correct horse battery " + name
		if err := anon.Do(ctx, "POST", "/api/v1/enrol", map[string]string{"username": name, "code": code, "password": "short"}, nil); err == nil {
			t.Fatal("a 5-byte password was accepted")
		}
		if err := anon.Do(ctx, "POST", "/api/v1/enrol", map[string]string{"username": name, "code": code, "password": pw}, nil); err != nil {
			t.Fatal(err)
		}
		err = anon.Do(ctx, "POST", "/api/v1/enrol", map[string]string{"username": name, "code": code, "password": pw + "!"}, nil)
		refusedWith(t, err, 401, "") // a code works once
		if admins[name], err = client.Login(ctx, s.URL, name, pw); err != nil {
			t.Fatal(err)
		}
	}
	for _, org := range []string{"npa", "elsewhere"} {
		if _, _, err := service.Bootstrap(ctx, s.DB, s.Appender, org, "", "mallory", "Mallory"); !errors.Is(err, service.ErrBootstrapClosed) {
			t.Fatalf("a third bootstrap (into %s): %v, want %v", org, err, service.ErrBootstrapClosed)
		}
	}

	// Every other account: alice proposes, bob approves; alone, alice can do nothing.
	change := func(c map[string]any) map[string]any {
		t.Helper()
		c["reason"] = "staffing the installation"
		var p, done map[string]any
		if err := admins["alice"].Do(ctx, "POST", "/api/v1/admin/role-changes", c, &p); err != nil {
			t.Fatalf("propose %v: %v", c, err)
		}
		id, _ := p["id"].(string)
		refusedWith(t, admins["alice"].Do(ctx, "POST", "/api/v1/admin/role-changes/"+id+"/approve", nil, nil), 403, "two-person")
		if err := admins["bob"].Do(ctx, "POST", "/api/v1/admin/role-changes/"+id+"/approve", nil, &done); err != nil {
			t.Fatalf("approve %v: %v", c, err)
		}
		return done
	}
	change(map[string]any{"kind": "create_org", "account": map[string]string{"org_id": "ccis", "org_name": "Cyber Communications Information Supervisory Commission", "org_kind": "commission"}})
	people := []struct{ name, org, role string }{
		{"officer", "npa", "officer"}, {"legal", "npa", "legal"}, {"commander", "npa", "commander"}, {"executor", "npa", "executor"},
		{"chair", "ccis", "commission_chair"}, {"member1", "ccis", "commissioner"}, {"member2", "ccis", "commissioner"},
	}
	ids, codes := map[string]string{}, map[string]string{}
	for _, p := range people {
		done := change(map[string]any{"kind": "create_user", "role": p.role, "account": map[string]string{"org_id": p.org, "username": p.name, "display_name": p.name}})
		ids[p.name], _ = done["user"].(string)
		codes[p.name], _ = done["enrolment_code"].(string)
		if ids[p.name] == "" || codes[p.name] == "" {
			t.Fatalf("create_user %s answered %v", p.name, done)
		}
	}
	// A Commission role in an agency is refused at the proposal.
	err = admins["alice"].Do(ctx, "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "create_user", "role": "commissioner", "reason": "x",
		"account": map[string]string{"org_id": "npa", "username": "mixed", "display_name": "Mixed"}}, nil)
	refusedWith(t, err, 403, "SoD-2")
	var users struct{ Users []service.User }
	if err := admins["bob"].Do(ctx, "GET", "/api/v1/admin/users", nil, &users); err != nil || len(users.Users) != 2+len(people) {
		t.Fatalf("the administrators list %d accounts, want %d (%v)", len(users.Users), 2+len(people), err)
	}
	var pending struct{ Changes []service.RoleChange }
	if err := admins["bob"].Do(ctx, "GET", "/api/v1/admin/role-changes", nil, &pending); err != nil || len(pending.Changes) != 0 {
		t.Fatalf("%d changes pending after every approval (%v)", len(pending.Changes), err)
	}
	refusedWith(t, anon.Do(ctx, "GET", "/api/v1/admin/users", nil, nil), 401, "")
	now := time.Now()
	change(map[string]any{"kind": "designate", "user": ids["executor"], "scope": "npa", "valid_from": now.Add(-time.Hour), "valid_until": now.AddDate(1, 0, 0)})

	// Sign-in: the officer with a local password, everyone else through the provider.
	u := map[string]*client.Client{}
	pw := "officer's long password"
	if err := anon.Do(ctx, "POST", "/api/v1/enrol", map[string]string{"username": "officer", "code": codes["officer"], "password": pw}, nil); err != nil {
		t.Fatal(err)
	}
	if u["officer"], err = client.Login(ctx, s.URL, "officer", pw); err != nil {
		t.Fatal(err)
	}
	testenv.Reading(u["officer"])
	for i, p := range people[1:] {
		var c *client.Client
		var status int
		if i == 0 {
			c, status = signOnAs(t, idp, s.URL, userInfoOnly{&mockoidc.MockUser{Subject: "sub-" + p.name, PreferredUsername: p.name}})
		} else {
			c, status = signOn(t, idp, s.URL, p.name)
		}
		if status != http.StatusCreated {
			t.Fatalf("%s signs on: %d", p.name, status)
		}
		u[p.name] = testenv.Reading(c)
	}
	if _, status := signOn(t, idp, s.URL, "stranger"); status != http.StatusUnauthorized {
		t.Fatalf("an identity with no account signs on: %d", status)
	}
	// Another identity with the username of a bound account is told so, not "no account".
	if _, status := signOnAs(t, idp, s.URL, &mockoidc.MockUser{Subject: "sub-impostor", PreferredUsername: people[1].name}); status != http.StatusUnauthorized {
		t.Fatalf("a second identity for a bound account signs on: %d", status)
	}
	var bound int
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE convert_from(record, 'UTF8')::jsonb->>'action' = 'login.failed'
		AND convert_from(record, 'UTF8')::jsonb->>'reason' LIKE '%is bound to another identity%'`).Scan(&bound); err != nil || bound != 1 {
		t.Fatalf("the second identity's refusal is audited %d times (%v)", bound, err)
	}
	// A browser that comes back without its sign-on cookie gets a page, not the API's JSON.
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/auth/oidc/callback?state=lost&code=x", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode < 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("a browser's lost sign-on: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A callback that did not start here (a forged or replayed state) fails, and is audited.
	if resp, err := http.Get(s.URL + "/auth/oidc/callback?state=forged&code=replayed"); err != nil || resp.StatusCode < 400 {
		t.Fatalf("a forged callback: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	var failed int
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE convert_from(record, 'UTF8')::jsonb->>'action' = 'login.failed'
		AND convert_from(record, 'UTF8')::jsonb->>'reason' LIKE 'single sign-on: this sign-on did not start here%'`).Scan(&failed); err != nil || failed != 2 {
		t.Fatalf("the forged callback is audited %d times (%v)", failed, err)
	}
	// The same provider signs people into the web pages: a browser session, not a token.
	if status, body := webSignOn(t, idp, s.URL, "legal"); status != http.StatusOK || !strings.Contains(body, "legal") || !strings.Contains(body, `id="waits"`) {
		t.Fatalf("legal signs on in the browser: %d %.200s", status, body)
	}
	if status, body := webSignOn(t, idp, s.URL, "stranger"); status != http.StatusUnauthorized || !strings.Contains(body, "no account") {
		t.Fatalf("an identity with no account signs on in the browser: %d %.300s", status, body)
	}

	// The command line signs on too (takedown login -sso): the browser returns to its loopback
	// listener with the token sealed, never in clear in a URL.
	c, visited, err := cliSignOn(ctx, idp, s.URL, "commander")
	if err != nil {
		t.Fatalf("commander signs on from the command line: %v", err)
	}
	var whom struct{ Username string }
	if err := c.Do(ctx, "GET", "/api/v1/me", nil, &whom); err != nil || whom.Username != "commander" {
		t.Fatalf("the command line's token is %q's (%v), want commander's", whom.Username, err)
	}
	for _, v := range visited {
		if strings.Contains(v, c.Token) {
			t.Fatalf("the token appears in clear in a URL the browser visited: %s", v)
		}
	}
	if _, _, err := cliSignOn(ctx, idp, s.URL, "stranger"); err == nil || !strings.Contains(err.Error(), "no account") {
		t.Fatalf("an identity with no account signs on from the command line: %v", err)
	}
	// Only a loopback listener of the right shape may receive a token.
	pub := "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
	for _, q := range []string{
		"cli=http://attacker.example:8080/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=https://127.0.0.1:8080/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://127.0.0.1/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://127.0.0.1.attacker.example:80/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://user@127.0.0.1:8080/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://127.0.0.1:8080/callback?next=x&key=" + pub + "&state=0123456789abcdef",
		"cli=http://127.0.0.1:8080/callback&key=short&state=0123456789abcdef",
		"cli=http://127.0.0.1:8080/callback&key=" + pub + "&state=short",
		"cli=http://127.0.0.1:8080/callback&key=" + pub + "&state=0123456789abcdef%0a%0d",
		"cli=http://10.0.0.1:8080/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://127.0.0.2:8080/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://[::ffff:127.0.0.1]:8080/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://127.0.0.1:0/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://127.0.0.1:99999/callback&key=" + pub + "&state=0123456789abcdef",
		"cli=http://localhost:8080/callback&key=" + pub + "&state=0123456789abcdef",
	} {
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(s.URL + "/auth/oidc/login?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "cli sign-on") {
			t.Errorf("login?%s: %s %.200s; want 400 naming the cli sign-on", q, resp.Status, body)
		}
	}

	// A measure, start to finish.
	caseID, err := u["officer"].CreateCase(ctx, "PlugX C2 in a Tokyo data centre", "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := u["officer"].CreateMeasure(ctx, caseID, plan("self_execute", ids["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddTargets(ctx, m.ID, domestic); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["officer"], m.ID, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], m.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], m.ID, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], m.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], m.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], m.ID, "vote", vote("approve"), "APPROVED")
	mustAct(t, u["executor"], m.ID, "start_execution", nil, "EXECUTING")
	at := time.Now().UTC().Format(time.RFC3339Nano)
	mustAct(t, u["executor"], m.ID, "log_steps", map[string]any{"steps": []map[string]any{
		{"target": "203.0.113.10", "technique": "disable_malware", "action": "sent self-delete", "result": "success", "witness": ids["officer"], "at": at},
		{"target": "update.example-c2.jp", "technique": "disable_malware", "action": "sent self-delete", "result": "success", "witness": ids["officer"], "at": at},
	}}, "EXECUTING")
	mustAct(t, u["executor"], m.ID, "finish_execution", nil, "EXECUTED")
	mustAct(t, u["officer"], m.ID, "report", map[string]any{"body": "both targets neutralised"}, "REPORTED")
	mustAct(t, u["commander"], m.ID, "verify_report", nil, "NOTIFYING")
	mustAct(t, u["officer"], m.ID, "notify", map[string]any{"notifications": []map[string]any{{"addressee": "the hosting provider", "status": "sent"}}}, "NOTIFYING")
	mustAct(t, u["officer"], m.ID, "close", nil, "CLOSED")

	var me map[string]any
	// Where the provider is the authority for roles, the claim sets them, and a claim that
	// would break the separation of duties is refused.
	cfg.OIDCRolesClaim = "groups"
	s2, err := daemon.Start(ctx, cfg, daemon.Serve, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c, status := signOn(t, idp, s2.URL, "legal", "legal", "commander")
	if status != http.StatusCreated {
		t.Fatalf("legal signs on with two claimed roles: %d", status)
	}
	if err := c.Do(ctx, "GET", "/api/v1/me", nil, &me); err != nil || len(me["roles"].([]any)) != 2 {
		t.Fatalf("legal holds %v after claiming two roles (%v)", me["roles"], err)
	}
	if _, status := signOn(t, idp, s2.URL, "legal", "legal", "commissioner"); status != http.StatusForbidden {
		t.Fatalf("a claim of agency and Commission roles together: %d, want 403", status)
	}

	// Retiring a member shuts them out at once: their token, their next sign-on.
	change(map[string]any{"kind": "retire_user", "user": ids["member2"]})
	refusedWith(t, u["member2"].Do(ctx, "GET", "/api/v1/me", nil, &me), 401, "")
	if _, status := signOn(t, idp, s.URL, "member2"); status != http.StatusUnauthorized {
		t.Fatalf("a retired member signs on: %d", status)
	}
}
