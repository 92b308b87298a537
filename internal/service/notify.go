package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/webhook"
)

// Kinds of notification a person may choose to receive.
const (
	NoticeWaiting    = "waiting"    // something waits on you
	NoticeReminder   = "reminder"   // a deadline of something waiting on you nears
	NoticeOverdue    = "overdue"    // it has passed
	NoticeEscalation = "escalation" // a deadline of something you are next responsible for has passed
)

// NoticeKinds lists them in the order pages show them.
var NoticeKinds = []string{NoticeWaiting, NoticeReminder, NoticeOverdue, NoticeEscalation}

// NotificationPrefs is what a person chooses to receive, and where.
type NotificationPrefs struct {
	Email      string   `json:"email"`
	WebhookURL string   `json:"webhook_url"`
	Kinds      []string `json:"kinds"`
	// WebhookSecret is shown once, when a webhook address is set or changed: the receiver
	// checks each event's Standard Webhooks signature with it.
	WebhookSecret string `json:"webhook_secret,omitempty"`
}

// Notice is one notification: to one person, by one channel, about one measure. Its ID is
// derived from what it is about, so it is planned once; the receiver drops one it has seen
// (a resend after a lost answer carries the same ID, as Message-ID and webhook-id).
type Notice struct {
	ID        string     `json:"id"`
	User      string     `json:"user"`
	Channel   string     `json:"channel"` // email | webhook
	Address   string     `json:"address"`
	Kind      string     `json:"kind"`
	Measure   string     `json:"measure"`
	Stage     string     `json:"stage"`
	Ops       []string   `json:"ops,omitempty"`
	Deadline  *time.Time `json:"deadline,omitempty"`
	Due       string     `json:"due,omitempty"` // the deadline's name
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	// Secret signs a webhook (not shown).
	Secret string `json:"-"`
}

// NotificationPrefsOf reads a person's choices (none: nothing is sent).
func (s *Service) NotificationPrefsOf(ctx context.Context, a authz.Actor) (NotificationPrefs, error) {
	p := NotificationPrefs{Kinds: []string{}}
	err := s.DB.QueryRow(ctx, `SELECT email, webhook_url, kinds FROM notification_prefs WHERE user_id = $1`, a.ID).Scan(&p.Email, &p.WebhookURL, &p.Kinds)
	if errors.Is(err, pgx.ErrNoRows) {
		return NotificationPrefs{Kinds: slices.Clone(NoticeKinds)}, nil
	}
	return p, err
}

// SetNotificationPrefs saves a person's choices. A new webhook address gets a new secret,
// answered once.
func (s *Service) SetNotificationPrefs(ctx context.Context, a authz.Actor, p NotificationPrefs) (NotificationPrefs, error) {
	const action = "notification.preferences"
	p.Email, p.WebhookURL = strings.TrimSpace(p.Email), strings.TrimSpace(p.WebhookURL)
	if err := checkPrefs(&p); err != nil {
		return p, s.refuse(ctx, a, On{}, action, err)
	}
	var oldURL string
	_ = s.DB.QueryRow(ctx, `SELECT webhook_url FROM notification_prefs WHERE user_id = $1`, a.ID).Scan(&oldURL)
	secret := ""
	if p.WebhookURL != "" && p.WebhookURL != oldURL {
		secret = webhook.NewSecret()
	}
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notification_prefs (user_id, email, webhook_url, webhook_secret, kinds) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (user_id) DO UPDATE SET email = $2, webhook_url = $3, kinds = $5, updated_at = now(),
				webhook_secret = CASE WHEN $4 <> '' THEN $4 WHEN $3 = '' THEN '' ELSE notification_prefs.webhook_secret END`,
			a.ID, p.Email, p.WebhookURL, secret, p.Kinds); err != nil {
			return err
		}
		// The address is the person's; the log says that it changed and what is received.
		return s.append(ctx, tx, a, "notify-prefs/"+NewID(""), &audit.Record{Action: action,
			Details: map[string]any{"email": p.Email != "", "webhook": p.WebhookURL != "", "kinds": p.Kinds}})
	})
	if err != nil {
		return p, fmt.Errorf("save notification choices: %w", err)
	}
	p.WebhookSecret = secret
	return p, nil
}

func checkPrefs(p *NotificationPrefs) error {
	if fe := measure.CheckLine("email", p.Email, measure.MaxLine); fe != nil {
		return fe
	}
	if fe := measure.CheckLine("webhook_url", p.WebhookURL, 2048); fe != nil {
		return fe
	}
	if p.Email != "" {
		addr, err := mail.ParseAddress(p.Email)
		_, domain, _ := strings.Cut(p.Email, "@")
		if err != nil || addr.Name != "" || addr.Address != p.Email || !hostName(domain) {
			return &measure.FieldError{Field: "email", Message: "must be one address such as name@example.go.jp"}
		}
		// Full-width letters typed by an input method look like an address and reach nobody.
		for _, r := range p.Email {
			if r >= utf8.RuneSelf {
				return &measure.FieldError{Field: "email", Message: "must be written in half-width (ASCII) characters"}
			}
		}
	}
	if p.WebhookURL != "" {
		u, err := url.Parse(p.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return &measure.FieldError{Field: "webhook_url", Message: "must be an absolute http or https URL without credentials"}
		}
		if strings.IndexFunc(p.WebhookURL, unicode.IsSpace) >= 0 {
			return &measure.FieldError{Field: "webhook_url", Message: "must not hold a space (percent-encode a space in a path)"}
		}
		if strings.IndexFunc(p.WebhookURL, func(r rune) bool { return r < '!' || r > '~' }) >= 0 {
			return &measure.FieldError{Field: "webhook_url", Message: "must be written in ASCII (an international name as its xn-- form, other characters percent-encoded)"}
		}
		if strings.HasSuffix(u.Host, ":") {
			return &measure.FieldError{Field: "webhook_url", Message: "names a port that does not exist (1 to 65535)"}
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return &measure.FieldError{Field: "webhook_url", Message: "names a port that does not exist (1 to 65535)"}
			}
		}
	}
	if p.Kinds == nil {
		p.Kinds = []string{}
	}
	for i, k := range p.Kinds {
		if !slices.Contains(NoticeKinds, k) {
			return &measure.FieldError{Field: fmt.Sprintf("kinds[%d]", i), Message: fmt.Sprintf("must be one of %v", NoticeKinds)}
		}
	}
	slices.Sort(p.Kinds)
	p.Kinds = slices.Compact(p.Kinds)
	return nil
}

// MyNotifications lists the newest notifications planned for a person.
func (s *Service) MyNotifications(ctx context.Context, a authz.Actor) ([]Notice, error) {
	rows, err := s.DB.Query(ctx, `SELECT `+noticeColumns+` FROM notices WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT 100`, a.ID)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	ns, err := pgx.CollectRows(rows, scanNotice)
	if ns == nil {
		ns = []Notice{}
	}
	return ns, err
}

const noticeColumns = `id, user_id, channel, address, kind, measure_id, stage, ops, deadline, due, created_at, sent_at, attempts, last_error`

// noticeColumnsOf is noticeColumns of a table named by prefix.
func noticeColumnsOf(prefix string) string {
	return prefix + strings.ReplaceAll(noticeColumns, ", ", ", "+prefix)
}

func scanNotice(row pgx.CollectableRow) (Notice, error) {
	var n Notice
	err := row.Scan(&n.ID, &n.User, &n.Channel, &n.Address, &n.Kind, &n.Measure, &n.Stage, &n.Ops, &n.Deadline, &n.Due, &n.CreatedAt, &n.SentAt, &n.Attempts, &n.LastError)
	return n, err
}

// waitsOn says whether operations open to a person mean the measure waits on them: not when
// all they could do is withdraw it or declare an emergency on it.
func waitsOn(ops []authz.Op) bool {
	for _, op := range ops {
		if op != authz.OpWithdraw && op != authz.OpDeclareEmergency {
			return true
		}
	}
	return false
}

// escalations names, for each deadline, the role next responsible once it passes, and
// whether that role is the measure's agency's (else the Commission's).
var escalations = map[string]struct {
	role   authz.Role
	agency bool
}{
	"decision_overdue":                {authz.CommissionChair, false},
	"post_hoc_review_overdue":         {authz.CommissionChair, false},
	"commission_notification_overdue": {authz.Commander, true},
	"report_overdue":                  {authz.Commander, true},
	"notification_overdue":            {authz.Commander, true},
	"order_deadline_passed":           {authz.Commander, true},
}

// reminderLead is how long before a deadline its reminder goes: a day, or half the time the
// deadline gives when that is shorter.
func reminderLead(since, due time.Time) time.Duration {
	return min(24*time.Hour, due.Sub(since)/2)
}

// recipient is a person who chose to be told, with where.
type recipient struct {
	user, email, hook, secret string
	kinds                     []string
}

// PlanNotifications records the notifications due at now: what waits on each person who
// chose to be told, reminders before each deadline, and, once one passes, notices to the
// person and escalations to whoever is next responsible. Each is planned once (its key is
// what it is about); delivery is DeliverNotifications'.
func (s *Service) PlanNotifications(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.DB.Query(ctx, `SELECT p.user_id, p.email, p.webhook_url, p.webhook_secret, p.kinds FROM notification_prefs p
		JOIN users u ON u.id = p.user_id WHERE u.retired_at IS NULL AND (p.email <> '' OR p.webhook_url <> '') ORDER BY p.user_id`)
	if err != nil {
		return 0, fmt.Errorf("read notification choices: %w", err)
	}
	var rs []recipient
	for rows.Next() {
		var r recipient
		if err := rows.Scan(&r.user, &r.email, &r.hook, &r.secret, &r.kinds); err != nil {
			rows.Close()
			return 0, err
		}
		rs = append(rs, r)
	}
	rows.Close()
	planned := 0
	plan := func(r recipient, kind string, it WorkItem, key string) error {
		if !slices.Contains(r.kinds, kind) {
			return nil
		}
		ops := make([]string, len(it.Ops))
		for i, op := range it.Ops {
			ops[i] = string(op)
		}
		var deadline *time.Time
		if !it.Deadline.IsZero() {
			deadline = &it.Deadline
		}
		for _, ch := range [][2]string{{"email", r.email}, {"webhook", r.hook}} {
			if ch[1] == "" {
				continue
			}
			// The address is part of what a notice is: told elsewhere, it is another notice.
			k := strings.Join([]string{kind, it.Measure.ID, key, r.user, ch[0], ch[1]}, "|")
			sum := sha256.Sum256([]byte(k))
			tag, err := s.DB.Exec(ctx, `INSERT INTO notices (id, key, user_id, channel, address, kind, measure_id, stage, ops, deadline, due, next_try)
				VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (key) DO NOTHING`,
				"n-"+hex.EncodeToString(sum[:12]), k, r.user, ch[0], ch[1], kind, it.Measure.ID, string(it.Measure.Stage), ops, deadline, it.DeadlineName, now)
			if err != nil {
				return fmt.Errorf("plan a notification: %w", err)
			}
			planned += int(tag.RowsAffected())
		}
		return nil
	}
	for _, r := range rs {
		a, err := s.Actor(ctx, r.user)
		if err != nil {
			continue // retired meanwhile
		}
		items, err := s.workAt(ctx, a, now)
		if err != nil {
			return planned, err
		}
		for _, it := range items {
			if !waitsOn(it.Ops) {
				continue // a commander may declare an emergency on any draft: that waits on nobody
			}
			stageKey := fmt.Sprintf("v%d|%s|%d", it.Measure.Version, it.Measure.Stage, it.Since.UnixMilli())
			if err := plan(r, NoticeWaiting, it, stageKey); err != nil {
				return planned, err
			}
			if it.Deadline.IsZero() {
				continue
			}
			dueKey := fmt.Sprintf("%s|%d", it.DeadlineName, it.Deadline.UnixMilli())
			switch {
			case !now.Before(it.Deadline):
				err = plan(r, NoticeOverdue, it, dueKey)
			case !now.Before(it.Deadline.Add(-reminderLead(it.Since, it.Deadline))):
				err = plan(r, NoticeReminder, it, dueKey)
			}
			if err != nil {
				return planned, err
			}
		}
	}
	// Escalations: every open measure whose deadline has passed, to the role next responsible.
	open, err := s.openMeasures(ctx, readable(authz.ReadScope{All: true}))
	if err != nil {
		return planned, err
	}
	actors := map[string]*authz.Actor{}
	actorOf := func(id string) *authz.Actor {
		if a, ok := actors[id]; ok {
			return a
		}
		a, err := s.Actor(ctx, id)
		if err != nil {
			actors[id] = nil
			return nil
		}
		actors[id] = &a
		return &a
	}
	for _, o := range open {
		ds := s.Workflow.Deadlines(o.c)
		if len(ds) == 0 || now.Before(ds[0].At) {
			continue
		}
		esc, ok := escalations[ds[0].Name]
		if !ok {
			continue
		}
		it := WorkItem{Measure: o.sum, Since: o.c.Since, Deadline: ds[0].At, DeadlineName: ds[0].Name, Overdue: true}
		dueKey := fmt.Sprintf("%s|%d", ds[0].Name, ds[0].At.UnixMilli())
		for _, r := range rs {
			a := actorOf(r.user)
			if a == nil || !a.Has(esc.role) || (esc.agency && a.Org != o.sum.Org) {
				continue
			}
			if err := plan(r, NoticeEscalation, it, dueKey); err != nil {
				return planned, err
			}
		}
	}
	return planned, nil
}

// DeliverNotifications sends the notifications due at now, one transaction each: the row is
// held while send runs and marked sent, with its audit record, in the same transaction, so a
// sender stopped mid-send leaves it to be sent again and never marks one unsent as sent. The
// log is the authority on what was sent: a notice whose audit record exists is not sent
// again, whatever its row says. A notice the person's choices no longer ask for (another
// address, the kind or channel dropped) is withdrawn, not sent. A failure is retried later,
// backing off to an hour; one notice's trouble never holds up the others.
func (s *Service) DeliverNotifications(ctx context.Context, now time.Time, send func(context.Context, Notice) error) (int, error) {
	sent := 0
	for range 1000 {
		var done bool
		var failed error
		err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
			var n Notice
			var prefEmail, prefHook string
			var prefKinds []string
			row := tx.QueryRow(ctx, `SELECT `+noticeColumnsOf("n.")+`, COALESCE(p.webhook_secret, ''), COALESCE(p.email, ''), COALESCE(p.webhook_url, ''), COALESCE(p.kinds, '{}')
				FROM notices n LEFT JOIN notification_prefs p ON p.user_id = n.user_id
				WHERE n.sent_at IS NULL AND n.withdrawn_at IS NULL AND n.next_try <= $1 ORDER BY n.next_try, n.id LIMIT 1 FOR UPDATE OF n SKIP LOCKED`, now)
			err := row.Scan(&n.ID, &n.User, &n.Channel, &n.Address, &n.Kind, &n.Measure, &n.Stage, &n.Ops, &n.Deadline, &n.Due,
				&n.CreatedAt, &n.SentAt, &n.Attempts, &n.LastError, &n.Secret, &prefEmail, &prefHook, &prefKinds)
			if errors.Is(err, pgx.ErrNoRows) {
				done = true
				return nil
			}
			if err != nil {
				return err
			}
			var logged bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_entries WHERE key = $1)`, noticeKey(n.ID)).Scan(&logged); err != nil {
				return err
			}
			if logged {
				// Sent already, as the log says: the row was set back by hand, not resent.
				s.Log.ErrorContext(ctx, "ALERT: a notification the log records as sent was marked unsent in the database; not sent again", "notice", n.ID)
				_, err := tx.Exec(ctx, `UPDATE notices SET sent_at = COALESCE(sent_at, $2), last_error = 'sent already, as the audit log records' WHERE id = $1`, n.ID, now)
				return err
			}
			want := map[string]string{"email": prefEmail, "webhook": prefHook}[n.Channel]
			if want == "" || want != n.Address || !slices.Contains(prefKinds, n.Kind) {
				_, err := tx.Exec(ctx, `UPDATE notices SET withdrawn_at = $2, last_error = 'withdrawn: the person''s choices no longer ask for it' WHERE id = $1`, n.ID, now)
				return err
			}
			// Told late (a receiver down, a sender stopped), a notice must still be true: one
			// about a stage the measure has left, or work the person has done, is withdrawn.
			if why, err := s.noticeOutdated(ctx, tx, n, now); err != nil {
				return err
			} else if why != "" {
				_, err := tx.Exec(ctx, `UPDATE notices SET withdrawn_at = $2, last_error = $3 WHERE id = $1`, n.ID, now, "withdrawn: "+why)
				return err
			}
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			serr := send(sctx, n)
			cancel()
			if ctx.Err() != nil {
				return ctx.Err() // stopped mid-send: roll back, send again later
			}
			if serr != nil {
				failed = serr
				backoff := min(time.Hour, time.Duration(1<<min(n.Attempts, 12))*time.Minute)
				_, err := tx.Exec(ctx, `UPDATE notices SET attempts = attempts + 1, last_error = $2, next_try = $3 WHERE id = $1`,
					n.ID, measure.Clip(serr.Error(), 500), now.Add(backoff))
				return err
			}
			// Never before it was planned: now is when this round began, planning included.
			if _, err := tx.Exec(ctx, `UPDATE notices SET attempts = attempts + 1, sent_at = GREATEST($2::timestamptz, clock_timestamp()), last_error = '' WHERE id = $1`, n.ID, now); err != nil {
				return err
			}
			sent++
			return s.append(ctx, tx, authz.System, noticeKey(n.ID), &audit.Record{Action: "notification.sent",
				Details: map[string]any{"id": n.ID, "kind": n.Kind, "to": n.User, "channel": n.Channel, "address": n.Address, "measure": n.Measure, "due": n.Due}})
		})
		if err != nil {
			if ctx.Err() != nil {
				return sent, ctx.Err()
			}
			return sent, fmt.Errorf("deliver notifications: %w", err)
		}
		if failed != nil {
			s.Log.WarnContext(ctx, "a notification could not be sent; it is tried again later", "err", failed)
		}
		if done {
			return sent, nil
		}
	}
	return sent, nil
}

func noticeKey(id string) string { return "notification/" + id }

// hostName says whether d is a host name mail can be delivered to: dotted labels of letters,
// digits and hyphens, none starting or ending with a hyphen, the last not all digits (so not
// an address literal or a bare IP address).
func hostName(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 || len(d) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// noticeOutdated says why n is no longer true at now, or "": the measure has left the stage
// it was planned in, or (for what waits on the person, its reminder and its passed deadline)
// the person's work list no longer holds the measure waiting on them.
func (s *Service) noticeOutdated(ctx context.Context, tx pgx.Tx, n Notice, now time.Time) (string, error) {
	if n.Measure == "" {
		return "", nil
	}
	var stage string
	if err := tx.QueryRow(ctx, `SELECT stage FROM measures WHERE id = $1`, n.Measure).Scan(&stage); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return "the measure is gone", nil
		}
		return "", fmt.Errorf("read the stage of %s: %w", n.Measure, err)
	}
	if stage != n.Stage {
		return fmt.Sprintf("the measure moved on from %s to %s", n.Stage, stage), nil
	}
	if n.Kind == NoticeEscalation {
		return "", nil
	}
	a, err := s.Actor(ctx, n.User)
	if refusal.Is(err) {
		return "the person's account is retired", nil
	} else if err != nil {
		return "", err
	}
	items, err := s.workAt(ctx, a, now)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		if it.Measure.ID != n.Measure || !waitsOn(it.Ops) {
			continue
		}
		// What it told them they could do must still be so: a member who has voted is not
		// reminded of the vote.
		now := make([]string, len(it.Ops))
		for i, op := range it.Ops {
			now[i] = string(op)
		}
		slices.Sort(now)
		planned := slices.Sorted(slices.Values(n.Ops))
		if !slices.Equal(now, planned) {
			return fmt.Sprintf("what is open to the person changed from %v to %v", planned, now), nil
		}
		// Returned and put back in the same stage, the measure is in another stay, with
		// another deadline: a notice planned for the earlier one is of a version gone. Its key
		// names the stay (or the deadline) it was planned for.
		var key string
		if err := tx.QueryRow(ctx, `SELECT key FROM notices WHERE id = $1`, n.ID).Scan(&key); err != nil {
			return "", fmt.Errorf("read notice %s: %w", n.ID, err)
		}
		var stay string
		switch n.Kind {
		case NoticeWaiting:
			stay = fmt.Sprintf("v%d|%s|%d", it.Measure.Version, it.Measure.Stage, it.Since.UnixMilli())
		case NoticeReminder, NoticeOverdue:
			stay = fmt.Sprintf("%s|%d", it.DeadlineName, it.Deadline.UnixMilli())
		}
		if stay != "" && !strings.Contains(key, "|"+stay+"|") {
			return "it was planned for an earlier stay in the stage (the measure was returned and came back)", nil
		}
		return "", nil
	}
	return "the measure no longer waits on the person", nil
}
