// Package notify tells people what waits on them: it plans notifications from the lifecycle's
// deadlines (service.PlanNotifications) and sends them by e-mail (SMTP, through
// github.com/wneessen/go-mail) and by webhooks signed per Standard Webhooks. A message holds
// no case content: the kind of notice, the measure's ID, the deadline and a link.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/takedown/takedown/internal/mailer"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/webhook"
)

// SMTP is how e-mail leaves (mailer.SMTP).
type SMTP = mailer.SMTP

// Sender delivers notices.
type Sender struct {
	SMTP    SMTP
	BaseURL string // where links point: the server's public URL
	HTTP    *http.Client
	// Timeout bounds one SMTP conversation (20 s when 0).
	Timeout time.Duration
	// AllowPrivate lets webhooks reach loopback, private and link-local addresses (a receiver
	// on the same host or network); otherwise a person's webhook cannot make the server call
	// its own network (-webhook-private).
	AllowPrivate bool
}

// client is the webhook client: it follows no redirect and, unless AllowPrivate, dials no
// loopback, private, link-local, multicast or unspecified address, whatever the name resolves to.
func (s *Sender) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return err
		}
		ip = ip.Unmap()
		if !s.AllowPrivate && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() || !ip.IsGlobalUnicast()) {
			return errPrivate
		}
		return nil
	}}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var errPrivate = errors.New("the webhook's address is a loopback, private or link-local one")

// Send delivers one notice by its channel.
func (s *Sender) Send(ctx context.Context, n service.Notice) error {
	switch n.Channel {
	case "email":
		return s.mail(ctx, n)
	case "webhook":
		return s.hook(ctx, n)
	}
	return fmt.Errorf("unknown channel %q", n.Channel)
}

func (s *Sender) link(n service.Notice) string {
	return strings.TrimSuffix(s.BaseURL, "/") + "/measures/" + n.Measure
}

// Words of each kind, in Japanese and English.
var kindWords = map[string][2]string{
	service.NoticeWaiting:    {"対応をお待ちしています", "waits on you"},
	service.NoticeReminder:   {"期限が近づいています", "its deadline nears"},
	service.NoticeOverdue:    {"期限を過ぎています", "its deadline has passed"},
	service.NoticeEscalation: {"期限を過ぎています(次の責任者としての通知)", "its deadline has passed (you are next responsible)"},
}

// Text is the notice as a message: a subject and a body, in Japanese then English, with
// links under base.
func Text(n service.Notice, base string) (subject, body string) {
	base = strings.TrimSuffix(base, "/")
	link := base + "/measures/" + n.Measure
	w := kindWords[n.Kind]
	subject = fmt.Sprintf("[takedown] %s: %s / %s", n.Measure, w[0], w[1])
	var b strings.Builder
	jst := time.FixedZone("JST", 9*3600)
	fmt.Fprintf(&b, "措置承認申請 %s: %s。\n", n.Measure, w[0])
	if len(n.Ops) > 0 {
		fmt.Fprintf(&b, "可能な操作: %s\n", strings.Join(n.Ops, ", "))
	}
	if n.Deadline != nil {
		fmt.Fprintf(&b, "期限: %s\n", n.Deadline.In(jst).Format("2006-01-02 15:04 MST"))
	}
	fmt.Fprintf(&b, "%s\n\n", link)
	fmt.Fprintf(&b, "Measure %s: %s.\n", n.Measure, w[1])
	if len(n.Ops) > 0 {
		fmt.Fprintf(&b, "You may: %s\n", strings.Join(n.Ops, ", "))
	}
	if n.Deadline != nil {
		fmt.Fprintf(&b, "Deadline: %s\n", n.Deadline.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "%s\n\n-- \nThis message holds no case content; read the measure after logging in. Choose what you receive at %s/notifications\n", link, base)
	return subject, b.String()
}

func (s *Sender) mail(ctx context.Context, n service.Notice) error {
	if s.SMTP.Addr == "" {
		return fmt.Errorf("no SMTP server is configured (-smtp-addr)")
	}
	smtp := s.SMTP
	if s.Timeout > 0 {
		smtp.Timeout = s.Timeout
	}
	subject, body := Text(n, s.BaseURL)
	// The notice's own ID: a resend after a lost answer is the same message.
	return smtp.Send(ctx, n.Address, subject, body, n.ID+"@takedown")
}

func (s *Sender) hook(ctx context.Context, n service.Notice) error {
	signer, err := webhook.NewSigner(n.Secret)
	if err != nil {
		return fmt.Errorf("the webhook's secret: %w", err)
	}
	data := map[string]any{"measure": n.Measure, "stage": n.Stage, "kind": n.Kind, "link": s.link(n)}
	if len(n.Ops) > 0 {
		data["ops"] = n.Ops
	}
	if n.Deadline != nil {
		data["deadline"], data["due"] = n.Deadline.UTC().Format(time.RFC3339), n.Due
	}
	now := time.Now()
	body, _ := json.Marshal(map[string]any{"type": "takedown.measure." + n.Kind, "timestamp": now.UTC().Format(time.RFC3339), "data": data})
	err = signer.Send(ctx, s.client(), n.Address, n.ID, body, now)
	var ue *url.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errPrivate):
		return errPrivate
	case errors.As(err, &ue):
		// What the person reads back: not which of their network's ports answered how.
		return errors.New("the webhook could not be reached")
	}
	return err
}

// Run plans and delivers notifications every interval until ctx ends; now is the clock
// deadlines are judged by.
func Run(ctx context.Context, svc *service.Service, s *Sender, every time.Duration, now func() time.Time, log *slog.Logger) {
	for {
		Once(ctx, svc, s, now(), log)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Once plans and delivers what is due at now.
func Once(ctx context.Context, svc *service.Service, s *Sender, now time.Time, log *slog.Logger) {
	if n, err := svc.PlanNotifications(ctx, now); err != nil {
		if ctx.Err() == nil {
			log.Error("plan notifications", "err", err)
		}
	} else if n > 0 {
		log.Info("notifications planned", "n", n)
	}
	if n, err := svc.DeliverNotifications(ctx, now, s.Send); err != nil {
		if ctx.Err() == nil {
			log.Error("deliver notifications", "err", err)
		}
	} else if n > 0 {
		log.Info("notifications sent", "n", n)
	}
}
