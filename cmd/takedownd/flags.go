package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
)

// Flags that several commands share.
var (
	logFlags      = []string{"log-level", "log-format"}
	traceFlags    = []string{"otlp-endpoint"}
	temporalFlags = []string{"temporal-address", "temporal-namespace", "temporal-tls", "temporal-tls-ca", "temporal-tls-cert", "temporal-tls-key", "temporal-tls-server-name", "temporal-api-key-file"}
	httpFlags     = []string{"http", "tls-cert", "tls-key", "public-url", "trusted-proxies", "request-timeout", "token-ttl", "max-evidence", "codec-origins",
		"oidc-issuer", "oidc-client-id", "oidc-client-secret", "oidc-redirect-url", "oidc-roles-claim", "oidc-org-claim"}
	lifecycleFlags = []string{"decision-target", "decision-target-urgent", "approval-window", "emergency-notification", "post-hoc-review", "report-due",
		"notification-due", "history-limit", "commission-size", "quorum-members"}
	signingFlags = []string{"signing-key", "next-signing-key", "log-origin", "log-recheck", "reconcile-every", "witness"}
)

func join(lists ...[]string) []string { return slices.Concat(lists...) }

// notifyFlags configure the notifications dev and serve send.
var notifyFlags = []string{"smtp-addr", "smtp-from", "smtp-user", "smtp-password", "smtp-tls", "notify-every", "webhook-private"}

// commandFlags lists, for each command, the flags it reads: its -h shows those only, and any
// other is refused (a flag meant for another command is a mistake worth saying).
var commandFlags = map[string][]string{
	"dev":               join(logFlags, httpFlags, lifecycleFlags, signingFlags, notifyFlags, []string{"data-dir", "database-url", "append-key", "payload-key", "payload-accept-plaintext", "dev-witness", "temporal-log-level"}),
	"serve":             join(logFlags, traceFlags, temporalFlags, httpFlags, lifecycleFlags, notifyFlags, []string{"database-url", "append-key", "payload-key", "payload-accept-plaintext", "witness"}),
	"worker":            join(logFlags, traceFlags, temporalFlags, signingFlags, []string{"database-url", "append-key", "payload-key", "payload-accept-plaintext", "admin-http"}),
	"migrate":           join(logFlags, []string{"database-url", "app-role"}),
	"temporal-setup":    join(logFlags, temporalFlags, []string{"retention"}),
	"bootstrap":         join(logFlags, []string{"database-url", "append-key", "data-dir", "org", "org-name", "admin", "name"}),
	"keygen":            join(logFlags, []string{"out", "append", "payload", "promote", "log-origin"}),
	"audit export":      join(logFlags, []string{"database-url", "append-key", "data-dir", "out"}),
	"audit stream":      join(logFlags, []string{"database-url", "out", "from", "follow", "poll"}),
	"audit halts":       join(logFlags, []string{"database-url", "append-key", "data-dir"}), // the audit commands share their flags
	"audit clear-halt":  join(logFlags, []string{"database-url", "append-key", "data-dir", "id", "reason"}),
	"audit reconcile":   join(logFlags, []string{"database-url", "append-key", "data-dir", "policy"}),
	"audit restart-log": join(logFlags, []string{"database-url", "append-key", "data-dir", "signing-key", "log-origin", "previous-vkey", "witnessed-size", "reason"}),
}

// commandUsage makes fs's -h show the flags cmd reads.
func commandUsage(fs *flag.FlagSet, cmd string) {
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: takedownd %s [flags]\n\nflags (each has the environment fallback it names):\n", cmd)
		own, all := commandFlags[cmd]
		fs.VisitAll(func(f *flag.Flag) {
			if all && !slices.Contains(own, f.Name) {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			line := "  -" + f.Name
			if name != "" {
				line += " " + name
			}
			fmt.Fprintf(out, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(out, " (default %q)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
}

// checkFlags refuses a flag given on the command line that cmd does not read.
func checkFlags(fs *flag.FlagSet, cmd string) error {
	own, ok := commandFlags[cmd]
	if !ok {
		return nil
	}
	var stray []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(own, f.Name) {
			stray = append(stray, "-"+f.Name)
		}
	})
	if len(stray) > 0 {
		return fmt.Errorf("%s does not read %s (takedownd %s -h lists its flags)", cmd, strings.Join(stray, ", "), cmd)
	}
	return nil
}
