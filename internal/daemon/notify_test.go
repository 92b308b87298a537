package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/notify"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/internal/webhook"
	"github.com/takedown/takedown/workflows"
)

// TestNotifications: people choose what they are told; what waits on the legal reviewer is
// mailed once, even when the sender is stopped in the middle of the SMTP conversation and
// starts again; a commissioner's webhook carries a Standard Webhooks signature their secret
// verifies; with the clock moved on, a reminder comes a day before the Commission's decision
// target and, once it passes, the chair is told as the next responsible person; no message
// holds case content; every send is in the audit log, which verifies.
func TestNotifications(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	smtp := testenv.StartSMTP(t)
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) {
		c.SMTPAddr, c.SMTPTLS = smtp.Addr, "none"
	})
	ctx := context.Background()
	u := e.Users
	svc := e.D.Service
	sender := &notify.Sender{BaseURL: e.D.URL, SMTP: notify.SMTP{Addr: smtp.Addr, From: "takedown@example.go.jp", TLS: "none"}, Timeout: 3 * time.Second,
		AllowPrivate: true} // the receiver is on loopback
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var mu sync.Mutex
	var hooks []*http.Request
	var hookBodies []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks, hookBodies = append(hooks, r), append(hookBodies, string(b))
		mu.Unlock()
	}))
	defer receiver.Close()

	set := func(who string, body map[string]any) map[string]any {
		var out map[string]any
		if err := u[who].Do(ctx, "PUT", "/api/v1/me/notifications", body, &out); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		return out
	}
	err := u["legal"].Do(ctx, "PUT", "/api/v1/me/notifications", map[string]any{"email": "legal <legal@example>"}, nil)
	refusedWith(t, err, 400, "email")
	err = u["legal"].Do(ctx, "PUT", "/api/v1/me/notifications", map[string]any{"webhook_url": "ftp://x"}, nil)
	refusedWith(t, err, 400, "webhook_url")
	for _, bad := range []string{"http://example.org/a b", "http://example.org/a\u3000b", "http://example.org/a\u00a0b", "http://example.org:99999/x"} {
		err = u["legal"].Do(ctx, "PUT", "/api/v1/me/notifications", map[string]any{"webhook_url": bad}, nil)
		refusedWith(t, err, 400, "webhook_url")
	}
	for _, bad := range []string{"http://example.org/a\u180eb", "http://127.0.0.1:/", "http://１２７.0.0.1:9/"} {
		err = u["legal"].Do(ctx, "PUT", "/api/v1/me/notifications", map[string]any{"webhook_url": bad}, nil)
		refusedWith(t, err, 400, "webhook_url")
	}
	for _, bad := range []string{"Ｔａｎａｋａ@example.jp", "a@b", "a@[127.0.0.1]", "a@1.2.3.4", "a@-example.jp", "a@exa_mple.jp"} {
		err = u["legal"].Do(ctx, "PUT", "/api/v1/me/notifications", map[string]any{"email": bad}, nil)
		refusedWith(t, err, 400, "email")
	}
	err = u["legal"].Do(ctx, "PUT", "/api/v1/me/notifications", map[string]any{"kinds": []string{"everything"}}, nil)
	refusedWith(t, err, 400, "kinds[0]")
	set("legal", map[string]any{"email": "legal@example.go.jp", "kinds": []string{"waiting", "reminder", "overdue", "escalation"}})
	set("chair", map[string]any{"email": "chair@example.go.jp", "kinds": []string{"escalation"}})
	set("member2", map[string]any{"email": "member2@example.go.jp", "kinds": []string{}})
	hook := set("member1", map[string]any{"webhook_url": receiver.URL, "kinds": []string{"waiting", "reminder", "overdue"}})
	secret, _ := hook["webhook_secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("no webhook secret answered: %v", hook)
	}

	d := newDraft(t, e, "self_execute", domestic)
	mustAct(t, u["officer"], d.ID, "submit", nil, "LEGAL_REVIEW")
	now := time.Now()

	// The sender is stopped while the SMTP server holds the message's data unanswered.
	smtp.Stall(true)
	stopped, stop := context.WithCancel(ctx)
	go func() { <-smtp.Stalled(); stop() }()
	if n, err := svc.PlanNotifications(ctx, now); err != nil || n != 1 {
		t.Fatalf("planned %d (%v), want 1: legal's", n, err)
	}
	if n, _ := svc.DeliverNotifications(stopped, now, sender.Send); n != 0 {
		t.Fatalf("%d sent by a sender stopped mid-send", n)
	}
	smtp.Stall(false)
	notify.Once(ctx, svc, sender, now, log)
	notify.Once(ctx, svc, sender, now.Add(time.Minute), log)
	msgs := smtp.Messages()
	if len(msgs) != 1 || msgs[0].Header.Get("To") != "<legal@example.go.jp>" {
		t.Fatalf("%d messages: %v", len(msgs), smtp.Raw())
	}
	raw := smtp.Raw()[0]
	if !strings.Contains(raw, e.D.URL+"/measures/"+d.ID) || strings.Contains(raw, "PlugX") || !strings.Contains(raw, "legal_review") {
		t.Fatalf("the message: %s", raw)
	}

	mustAct(t, u["legal"], d.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], d.ID, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	entered := time.Now()
	notify.Once(ctx, svc, sender, entered, log)
	mu.Lock()
	if len(hooks) != 1 || !strings.Contains(hookBodies[0], `"type":"takedown.measure.waiting"`) || strings.Contains(hookBodies[0], "PlugX") {
		t.Fatalf("%d webhooks: %q", len(hooks), hookBodies)
	}
	signer, _ := webhook.NewSigner(secret)
	if err := signer.Verify(hooks[0].Header, []byte(hookBodies[0]), time.Now(), time.Minute); err != nil {
		t.Fatalf("the webhook's signature: %v", err)
	}
	mu.Unlock()

	// The clock moves: a day before the 72-hour decision target, then past it.
	notify.Once(ctx, svc, sender, entered.Add(49*time.Hour), log)
	notify.Once(ctx, svc, sender, entered.Add(73*time.Hour), log)
	notify.Once(ctx, svc, sender, entered.Add(74*time.Hour), log)
	mu.Lock()
	var kinds []string
	for _, b := range hookBodies {
		for _, k := range []string{"waiting", "reminder", "overdue", "escalation"} {
			if strings.Contains(b, `"type":"takedown.measure.`+k+`"`) {
				kinds = append(kinds, k)
			}
		}
	}
	mu.Unlock()
	if strings.Join(kinds, " ") != "waiting reminder overdue" {
		t.Fatalf("member1's webhooks: %v", kinds)
	}
	var toChair []string
	for _, m := range smtp.Messages() {
		if m.Header.Get("To") == "<chair@example.go.jp>" {
			subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			toChair = append(toChair, subject)
		}
		if m.Header.Get("To") == "<member2@example.go.jp>" {
			t.Fatalf("member2 chose nothing and was mailed: %s", m.Header.Get("Subject"))
		}
	}
	if len(toChair) != 1 || !strings.Contains(toChair[0], "next responsible") {
		t.Fatalf("the chair's messages: %q", toChair)
	}
	var mine struct {
		Notifications []map[string]any `json:"notifications"`
	}
	if err := u["chair"].Do(ctx, "GET", "/api/v1/me/notifications", nil, &mine); err != nil || len(mine.Notifications) != 1 || mine.Notifications[0]["sent_at"] == nil {
		t.Fatalf("the chair's notifications: %v (%v)", mine, err)
	}
	// An insider marks a sent notice unsent: the log says it was sent; it is not sent again,
	// and the others still go.
	before := len(smtp.Messages())
	if _, err := e.Owner.Exec(ctx, `UPDATE notices SET sent_at = NULL, next_try = now() - interval '1 hour' WHERE user_id = $1`, e.IDs["chair"]); err != nil {
		t.Fatal(err)
	}
	// A person changes where they are told: what was pending for the old address is withdrawn.
	d2 := newDraft(t, e, "self_execute", domestic)
	mustAct(t, u["officer"], d2.ID, "submit", nil, "LEGAL_REVIEW")
	if n, err := svc.PlanNotifications(ctx, entered.Add(75*time.Hour)); err != nil || n != 1 {
		t.Fatalf("planned %d (%v), want 1: legal's for the second measure", n, err)
	}
	set("legal", map[string]any{"email": "legal-new@example.go.jp", "kinds": []string{"waiting"}})
	if _, err := svc.DeliverNotifications(ctx, entered.Add(75*time.Hour), sender.Send); err != nil {
		t.Fatal(err)
	}
	if got := len(smtp.Messages()); got != before {
		t.Fatalf("%d messages after the edit and the change of address, want %d", got, before)
	}
	var withdrawn int
	_ = e.Owner.QueryRow(ctx, `SELECT count(*) FROM notices WHERE withdrawn_at IS NOT NULL AND address = 'legal@example.go.jp'`).Scan(&withdrawn)
	if withdrawn != 1 {
		t.Fatalf("%d notices withdrawn for the old address, want 1", withdrawn)
	}
	notify.Once(ctx, svc, sender, entered.Add(76*time.Hour), log)
	if msgs := smtp.Messages(); len(msgs) != before+1 || msgs[len(msgs)-1].Header.Get("To") != "<legal-new@example.go.jp>" {
		t.Fatalf("after planning again: %d messages, the last to %s", len(msgs), msgs[len(msgs)-1].Header.Get("To"))
	}

	// Told late: a notice planned while the measure waited on legal, delivered after legal
	// acted (a receiver down, a sender stopped), is withdrawn, not sent.
	before = len(smtp.Messages())
	d3 := newDraft(t, e, "self_execute", domestic)
	mustAct(t, u["officer"], d3.ID, "submit", nil, "LEGAL_REVIEW")
	if n, err := svc.PlanNotifications(ctx, entered.Add(77*time.Hour)); err != nil || n != 1 {
		t.Fatalf("planned %d (%v), want 1: legal's for the third measure", n, err)
	}
	mustAct(t, u["legal"], d3.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	if _, err := svc.DeliverNotifications(ctx, entered.Add(77*time.Hour), sender.Send); err != nil {
		t.Fatal(err)
	}
	if got := len(smtp.Messages()); got != before {
		t.Fatalf("a notice of work legal has done was sent: %d messages, want %d", got, before)
	}
	var why string
	_ = e.Owner.QueryRow(ctx, `SELECT last_error FROM notices WHERE measure_id = $1 AND withdrawn_at IS NOT NULL`, d3.ID).Scan(&why)
	if !strings.Contains(why, "moved on from LEGAL_REVIEW to COMMAND_REVIEW") {
		t.Fatalf("the late notice: %q", why)
	}
	// The same in one stage: member1's notice names the vote; member1 votes before it is
	// delivered; it is withdrawn (the measure still waits on member1 for nothing it named).
	d4 := newDraft(t, e, "self_execute", domestic)
	mustAct(t, u["officer"], d4.ID, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], d4.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], d4.ID, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	if _, err := svc.PlanNotifications(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["member1"], d4.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mu.Lock()
	hooksBefore := len(hooks)
	mu.Unlock()
	if _, err := svc.DeliverNotifications(ctx, time.Now(), sender.Send); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(hooks) != hooksBefore {
		t.Errorf("member1 was told of a vote already cast: %s", hookBodies[len(hookBodies)-1])
	}
	mu.Unlock()
	why = ""
	_ = e.Owner.QueryRow(ctx, `SELECT last_error FROM notices WHERE measure_id = $1 AND user_id = $2 AND withdrawn_at IS NOT NULL`, d4.ID, e.IDs["member1"]).Scan(&why)
	if !strings.Contains(why, "changed from [declare_conflict request_info vote]") {
		t.Fatalf("member1's late notice: %q", why)
	}
	// Returned and put back before a late notice went out: the notice of the first stay,
	// with its deadline, is withdrawn; the second stay's is sent.
	d5 := newDraft(t, e, "self_execute", domestic)
	mustAct(t, u["officer"], d5.ID, "submit", nil, "LEGAL_REVIEW")
	if _, err := svc.PlanNotifications(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["legal"], d5.ID, "legal_review", map[string]any{"decision": "return", "reason": "the evidence is thin"}, "DRAFT")
	mustAct(t, u["officer"], d5.ID, "submit", nil, "LEGAL_REVIEW")
	if _, err := svc.PlanNotifications(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeliverNotifications(ctx, time.Now(), sender.Send); err != nil {
		t.Fatal(err)
	}
	var stays []string
	rows, _ := e.Owner.Query(ctx, `SELECT COALESCE(last_error, ''), sent_at IS NOT NULL FROM notices WHERE measure_id = $1 AND user_id = $2 ORDER BY created_at`, d5.ID, e.IDs["legal"])
	for rows.Next() {
		var why string
		var sent bool
		_ = rows.Scan(&why, &sent)
		stays = append(stays, fmt.Sprintf("%v %s", sent, why))
	}
	rows.Close()
	if len(stays) != 2 || !strings.Contains(stays[0], "false withdrawn: it was planned for an earlier stay") || !strings.HasPrefix(stays[1], "true") {
		t.Fatalf("legal's notices of the two stays: %q", stays)
	}

	var sends int
	if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE convert_from(record, 'UTF8') LIKE '%"action":"notification.sent"%'`).Scan(&sends); err != nil {
		t.Fatal(err)
	}
	if sends != 7 { // legal waiting; member1 waiting, reminder, overdue; the chair's escalation; legal's new address; d5's second stay
		t.Fatalf("%d sends in the audit log, want 7", sends)
	}
	if rep := verifyLog(t, e); !rep.OK() {
		t.Fatalf("the log with sends does not verify: %v", rep.Failures)
	}
}
