package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/mailer"
	"github.com/takedown/takedown/internal/webhook"
)

// exitCode is an error that ends the program with a status of its own.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string { return e.err.Error() }

// auditMonitor watches a log from the outside, as the Commission would on its own machine:
// its public checkpoint and hash tiles, its own saved state, alerts on a fork, a rollback, a
// stalled log or a missing cosignature (exit status 2, and a signed webhook).
func auditMonitor(e *env) error {
	fs := e.fs
	policyFile := fs.String("policy", "", "policy file (as for audit verify): the log's key and the witnesses' quorum")
	state := fs.String("state", "", "file keeping the last checkpoint accepted and when the log last grew (created on the first run)")
	interval := fs.Duration("interval", 0, "look again every interval until stopped (0: look once)")
	stall := fs.Duration("stall", time.Hour, "alert when the log has not grown for this long (0: never)")
	hook := fs.String("webhook", "", "POST each alert to this URL, signed as Standard Webhooks says (secret in TAKEDOWN_WEBHOOK_SECRET)")
	mailTo := fs.String("mail-to", "", "mail each alert to this address, through -smtp-addr")
	smtp := mailer.SMTP{}
	fs.StringVar(&smtp.Addr, "smtp-addr", envOr("TAKEDOWN_SMTP_ADDR", ""), "SMTP server (host:port) alerts are mailed through (TAKEDOWN_SMTP_ADDR)")
	fs.StringVar(&smtp.From, "smtp-from", envOr("TAKEDOWN_SMTP_FROM", "takedown-monitor@localhost"), "the alerts' sender address (TAKEDOWN_SMTP_FROM)")
	fs.StringVar(&smtp.User, "smtp-user", envOr("TAKEDOWN_SMTP_USER", ""), "SMTP account; its password in TAKEDOWN_SMTP_PASSWORD")
	fs.StringVar(&smtp.TLS, "smtp-tls", envOr("TAKEDOWN_SMTP_TLS", "starttls"), "starttls, tls or none")
	if err := e.parse(); err != nil {
		return err
	}
	if *policyFile == "" || *state == "" {
		return errors.New("audit monitor needs -policy and -state")
	}
	if *interval < 0 || *stall < 0 {
		return fmt.Errorf("-interval and -stall must not be negative (0: look once, never alert on a stall); got %v and %v", *interval, *stall)
	}
	if u, err := url.Parse(*e.server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-server %q is not an http(s) URL with a host, such as https://takedown.example.go.jp", *e.server)
	}
	raw, err := audit.ReadFile(*policyFile, audit.MaxSmallFile)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	pol, err := audit.ParsePolicy(string(raw))
	if err != nil {
		return err
	}
	var signer *webhook.Signer
	if *hook != "" {
		if signer, err = webhook.NewSigner(os.Getenv("TAKEDOWN_WEBHOOK_SECRET")); err != nil {
			return fmt.Errorf("TAKEDOWN_WEBHOOK_SECRET: %w", err)
		}
	}
	smtp.Password = os.Getenv("TAKEDOWN_SMTP_PASSWORD")
	if *mailTo != "" && smtp.Addr == "" {
		return errors.New("-mail-to needs -smtp-addr")
	}
	fetch := httpFetch(strings.TrimSuffix(*e.server, "/"))
	sent := map[string]bool{} // alerts already sent while following
	for {
		found, err := monitorOnce(e.ctx, fetch, pol, *state, *stall, e.out)
		if err != nil {
			return err
		}
		for _, a := range found {
			// A standing alert (a log stalled for hours) is said once, not at every look.
			key := a.Kind + "\x00" + a.Got
			if sent[key] {
				continue
			}
			fmt.Fprintf(e.out, "%s ALERT %s: %s\n", time.Now().UTC().Format(time.RFC3339), a.Kind, a.Message)
			if a.Saved != "" {
				fmt.Fprintf(e.out, "--- the checkpoint this monitor had accepted ---\n%s--- the checkpoint the log shows now ---\n%s", a.Saved, a.Got)
			}
			ok := true
			if signer != nil {
				if err := sendAlert(e.ctx, signer, *hook, a); err != nil {
					fmt.Fprintf(e.out, "the webhook failed: %v\n", err)
					ok = false
				}
			}
			if *mailTo != "" {
				subject := "[takedown monitor] " + a.Kind + ": " + a.Message
				body := a.Message + "\n"
				if a.Saved != "" {
					body += "\n--- the checkpoint this monitor had accepted ---\n" + a.Saved + "--- the checkpoint the log shows now ---\n" + a.Got
				}
				id := fmt.Sprintf("monitor-%s-%d@takedown", a.Kind, time.Now().UnixNano())
				if err := smtp.Send(e.ctx, *mailTo, clip(subject, 200), body, id); err != nil {
					fmt.Fprintf(e.out, "the mail failed: %v\n", err)
					ok = false
				}
			}
			sent[key] = ok
		}
		if *interval <= 0 {
			if len(found) > 0 {
				return &exitCode{2, fmt.Errorf("%d alerts", len(found))}
			}
			return nil
		}
		select {
		case <-e.ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// monitorOnce looks at the log once, prints what it found and saves the state.
func monitorOnce(ctx context.Context, fetch audit.Fetch, pol audit.Policy, statePath string, stall time.Duration, out io.Writer) ([]audit.Alert, error) {
	b, err := os.ReadFile(statePath)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	saved := err == nil
	st, err := audit.ParseMonitorState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statePath, err)
	}
	if saved && st.Checkpoint == "" {
		// Only a state with an accepted checkpoint is saved: an empty or cut file is a state
		// lost, and a monitor that forgot its checkpoint would trust whatever it is shown.
		return nil, fmt.Errorf("%s holds no accepted checkpoint (empty, cut short or not this monitor's): remove it only if this is to be a first look, which trusts the log as it is now", statePath)
	}
	now := time.Now().UTC()
	next, alerts := audit.Monitor(ctx, fetch, pol, st, now, stall)
	if next.Checkpoint != "" {
		if c, err := audit.ReadState([]byte(next.Checkpoint), pol); err == nil && len(alerts) == 0 {
			fmt.Fprintf(out, "%s OK %s size %d\n", now.Format(time.RFC3339), c.Origin, c.Size)
		}
	}
	if next.Checkpoint == "" {
		return alerts, nil // nothing accepted yet: the next look is a first look again
	}
	data, _ := json.MarshalIndent(next, "", "  ")
	if err := writeState(statePath, append(data, '\n')); err != nil {
		return alerts, fmt.Errorf("save state: %w", err)
	}
	return alerts, nil
}

// httpFetch reads a log's public read API under base.
func httpFetch(base string) audit.Fetch {
	hc := &http.Client{Timeout: 30 * time.Second}
	return func(ctx context.Context, path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/"+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET /%s: %s", path, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
}

// sendAlert posts an alert as a Standard Webhooks event.
func sendAlert(ctx context.Context, s *webhook.Signer, url string, a audit.Alert) error {
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{"type": "takedown.log." + a.Kind, "timestamp": now.Format(time.RFC3339), "data": a})
	id := fmt.Sprintf("msg_monitor_%s_%d", a.Kind, now.UnixNano())
	return s.Send(ctx, nil, url, id, body, now)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
