// Package mailer sends one plain-text e-mail through an SMTP server
// (github.com/wneessen/go-mail): the notifier's messages and the log monitor's alerts.
package mailer

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTP is how e-mail leaves: a server, and the sender's address.
type SMTP struct {
	Addr     string // host:port; empty: no e-mail is sent
	From     string
	User     string
	Password string
	TLS      string        // starttls (default), tls, or none (a relay on the same host)
	Timeout  time.Duration // one conversation (20 s when 0)
}

// Send sends one message; id becomes its Message-ID, so a resend after a lost answer is
// recognisably the same message.
func (s SMTP) Send(ctx context.Context, to, subject, body, id string) error {
	if s.Addr == "" {
		return fmt.Errorf("no SMTP server is configured")
	}
	host, portText, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("SMTP server %q: %w", s.Addr, err)
	}
	port, _ := strconv.Atoi(portText)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(timeout)}
	switch s.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPortPolicy(mail.NoTLS), mail.WithPort(port))
	default:
		opts = append(opts, mail.WithTLSPortPolicy(mail.TLSMandatory), mail.WithPort(port))
	}
	if s.User != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(s.User), mail.WithPassword(s.Password))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		return err
	}
	m := mail.NewMsg()
	if err := m.From(s.From); err != nil {
		return fmt.Errorf("the sender address: %w", err)
	}
	if err := m.To(to); err != nil {
		return err
	}
	m.Subject(subject)
	m.SetBodyString(mail.TypeTextPlain, body)
	m.SetMessageIDWithValue(id)
	m.SetDate()
	return c.DialAndSendWithContext(ctx, m)
}
