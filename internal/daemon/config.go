// Package daemon wires takedownd together: configuration, PostgreSQL, the Temporal client and
// worker, and the HTTP server, in the shapes `dev`, `serve` and `worker`.
package daemon

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/workflows"
)

// Config is takedownd's whole configuration. Every field has a flag and an environment
// variable; the flag wins.
type Config struct {
	// SMTP is where notification e-mail leaves (-smtp-addr, -smtp-from, -smtp-user,
	// -smtp-password, -smtp-tls); NotifyEvery how often notifications are planned and sent
	// (0: never).
	SMTPAddr, SMTPFrom, SMTPUser, SMTPPassword, SMTPTLS string
	NotifyEvery                                         time.Duration
	// WebhookPrivate lets webhooks reach loopback, private and link-local addresses.
	WebhookPrivate bool
	// Clock, when set, is the clock login throttling reads (tests set one they control).
	Clock func() time.Time
	// HTTP is the listen address of the UI, API and health check (TAKEDOWN_HTTP).
	HTTP string
	// AdminHTTP is the worker's own listen address for /healthz, /readyz and /metrics
	// (TAKEDOWN_ADMIN_HTTP); empty: none. serve and dev answer them on -http.
	AdminHTTP string
	// DataDir holds the embedded default's state: Temporal's SQLite file and, when no
	// PostgreSQL answers, a private cluster (TAKEDOWN_DATA_DIR). Empty keeps Temporal in memory.
	DataDir string
	// DatabaseURL is the PostgreSQL connection string (DATABASE_URL).
	DatabaseURL string
	// TemporalAddress is the frontend of an external Temporal cluster (TEMPORAL_ADDRESS);
	// `dev` ignores it and runs its own.
	TemporalAddress string
	// Namespace is the Temporal namespace (TEMPORAL_NAMESPACE).
	Namespace string
	// DevTemporal, when set, is the address of an embedded Temporal server already running in
	// this process, which `dev` uses (in Namespace) instead of starting its own: tests share
	// one. No flag sets it.
	DevTemporal string
	// TemporalTLSCert, TemporalTLSKey: client certificate for mTLS (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY).
	TemporalTLSCert, TemporalTLSKey string
	// TemporalTLSCA: CA bundle that signs the cluster's certificate (TEMPORAL_TLS_CA).
	TemporalTLSCA string
	// TemporalTLSServerName overrides the name checked in the cluster's certificate (TEMPORAL_TLS_SERVER_NAME).
	TemporalTLSServerName string
	// TemporalTLS enables TLS without a client certificate, as for Temporal Cloud API keys (TEMPORAL_TLS).
	TemporalTLS bool
	// TemporalAPIKey is a file holding a Temporal Cloud API key, sent with every call over TLS
	// (TEMPORAL_API_KEY_FILE).
	TemporalAPIKey string
	// MaxEvidence bounds one evidence upload in bytes (TAKEDOWN_MAX_EVIDENCE).
	MaxEvidence int64
	// Workflow holds the lifecycle's durations and quorum, given to each new measure.
	Workflow workflows.Config
	// SigningKey is the audit log's checkpoint signing key: a PEM file written by
	// `takedownd keygen` (TAKEDOWN_SIGNING_KEY). `dev` defaults to <data-dir>/audit.key and
	// creates it if missing.
	SigningKey string
	// NextSigningKey, during a key rotation, also signs every checkpoint
	// (TAKEDOWN_NEXT_SIGNING_KEY).
	NextSigningKey string
	// AppendKey is the file holding the key that authenticates every audit entry the service
	// and workers write, made by `takedownd keygen -append` (TAKEDOWN_APPEND_KEY). `dev`
	// defaults to <data-dir>/append.key and creates it if missing.
	AppendKey string
	// PayloadKey is the file of keys that seal every payload handed to Temporal, made by
	// `takedownd keygen -payload` (TAKEDOWN_PAYLOAD_KEY); the same file for serve and worker.
	// `dev` defaults to <data-dir>/payload.key and creates it if missing.
	PayloadKey string
	// PayloadAcceptPlaintext lets unsealed payloads be read: only while measures whose
	// histories began before payload encryption still run (TAKEDOWN_PAYLOAD_ACCEPT_PLAINTEXT).
	PayloadAcceptPlaintext bool
	// CodecOrigins are the browser origins (Temporal's UI) allowed to call the codec endpoint
	// /api/v1/codec (TAKEDOWN_CODEC_ORIGINS, comma-separated).
	CodecOrigins []string
	// Witnesses are "URL VKEY" pairs of c2sp.org/tlog-witness cosigners
	// (-witness, repeated; TAKEDOWN_WITNESSES, separated by ';').
	Witnesses []string
	// DevWitness: dev runs a witness of its own (key and state in <data-dir>/witness) when no
	// -witness is given (TAKEDOWN_DEV_WITNESS).
	DevWitness bool
	// LogOrigin names the audit log in its checkpoints (TAKEDOWN_LOG_ORIGIN).
	LogOrigin string
	// LogRecheck is how often the sequencer checks the whole log against what it signed
	// (TAKEDOWN_LOG_RECHECK); it also checks at every start.
	LogRecheck time.Duration
	// ReconcileEvery is how often the worker compares the tables with the signed log and halts
	// it on a difference that stands in two comparisons in a row; 0 never
	// (TAKEDOWN_RECONCILE_EVERY).
	ReconcileEvery time.Duration
	// LogLevel: debug, info, warn or error (TAKEDOWN_LOG_LEVEL).
	LogLevel string
	// LogFormat: text or json (TAKEDOWN_LOG_FORMAT).
	LogFormat string
	// OTLPEndpoint, when set, receives traces over OTLP/gRPC: http://collector:4317
	// (TAKEDOWN_OTLP_ENDPOINT).
	OTLPEndpoint string
	// TracerProvider, when set, is used instead of one exporting to OTLPEndpoint (tests).
	TracerProvider trace.TracerProvider
	// TemporalLogLevel is the embedded Temporal server's log level, or "off" (TAKEDOWN_TEMPORAL_LOG_LEVEL).
	TemporalLogLevel string
	// TokenTTL is how long an API token lives before its holder logs in again
	// (TAKEDOWN_TOKEN_TTL).
	TokenTTL time.Duration
	// PasswordCost is the bcrypt cost of the demo users' password hashes `dev` seeds (0:
	// bcrypt's default). Not a flag: tests lower it.
	PasswordCost int
	// OIDC configures single sign-on with an OpenID Connect provider: issuer URL, client ID
	// and secret, this server's callback URL, and optionally the claims roles and
	// organisation are mapped from (TAKEDOWN_OIDC_*).
	OIDCIssuer, OIDCClientID, OIDCClientSecret, OIDCRedirectURL, OIDCRolesClaim, OIDCOrgClaim string
	// RequestTimeout bounds every HTTP request: past it the client is answered 504 with what is
	// known, never left waiting (TAKEDOWN_REQUEST_TIMEOUT).
	RequestTimeout time.Duration
	// TLSCert and TLSKey, when set, make the server answer HTTPS itself (TAKEDOWN_TLS_CERT,
	// TAKEDOWN_TLS_KEY).
	TLSCert, TLSKey string
	// PublicURL is the address people reach the server at, when a proxy terminates TLS in
	// front of it (TAKEDOWN_PUBLIC_URL): https there makes cookies Secure and sends HSTS.
	PublicURL string
	// TrustedProxies are the proxies whose X-Forwarded-For names the client: the address
	// logins are throttled and audited by (TAKEDOWN_TRUSTED_PROXIES, comma-separated CIDRs).
	TrustedProxies []netip.Prefix
	// envErrs are environment variables Flags could not read (Validate reports them).
	envErrs []string
	// positive are the duration flags that must stay above 0 (durationVar).
	positive []namedDuration
}

// Secure reports whether people reach the server over HTTPS.
func (c *Config) Secure() bool {
	return c.TLSCert != "" || strings.HasPrefix(strings.ToLower(c.PublicURL), "https://")
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// durationVar registers a duration flag whose default comes from the environment variable
// envName. Both read days as the measure forms do (14d, 1d12h) beside Go's form (90s, 10m,
// 12h); a variable that does not parse is reported by Validate, never replaced by def.
func (c *Config) durationVar(fs *flag.FlagSet, p *time.Duration, name, envName string, def time.Duration, usage string) {
	*p = def
	if def > 0 && !slices.Contains(mayBeZero, name) {
		c.positive = append(c.positive, namedDuration{name, p})
	}
	if v, ok := os.LookupEnv(envName); ok {
		if d, err := parseDuration(v); err == nil {
			*p = d
		} else {
			c.envErrs = append(c.envErrs, fmt.Sprintf("%s=%q is not a duration (such as 90s, 10m, 12h or 14d)", envName, v))
		}
	}
	if strings.HasSuffix(usage, ")") {
		usage = strings.TrimSuffix(usage, ")") + ", a `duration` such as 90s, 12h or 14d)"
	}
	fs.Var((*durationValue)(p), name, usage)
}

// mayBeZero are the duration flags whose 0 means "never"; every other one with a positive
// default must stay positive.
var mayBeZero = []string{"notify-every", "reconcile-every"}

type namedDuration struct {
	flag string
	d    *time.Duration
}

// durationValue is a flag.Value that reads days too.
type durationValue time.Duration

// String writes whole days as days (14d) and drops zero minutes and seconds (72h, 90m), so
// -h shows the defaults as the README's table does.
func (d *durationValue) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 && v%(7*24*time.Hour) == 0 || v >= 24*time.Hour*30 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (d *durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (such as 90s, 10m, 12h or 14d)", s)
	}
	*d = durationValue(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if v, err := time.ParseDuration(s); err == nil {
		return v, nil
	}
	return measure.ParseDuration(s)
}

// envBool is a boolean flag's default from the environment: true, false, 1, 0, t, f in any
// case; anything else (yes, on, a typo) is reported by Validate rather than read as false.
func (c *Config) envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err == nil {
			return b
		}
		c.envErrs = append(c.envErrs, fmt.Sprintf("%s=%q is not true or false", name, v))
	}
	return def
}

// parsePrefixes reads comma-separated CIDRs (a bare address is its own /32 or /128).
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix or an address", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

// envInt is an integer flag's default from the environment; a value that is not an integer
// is reported by Validate.
func (c *Config) envInt(name string, def int64) int64 {
	if v, ok := os.LookupEnv(name); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return n
		}
		c.envErrs = append(c.envErrs, fmt.Sprintf("%s=%q is not a whole number", name, v))
	}
	return def
}

// DefaultLogOrigin names dev's audit log when -log-origin is not given. A production log needs
// a name of its own: witnesses keep one state per name, so two installations under one name
// sharing a witness would halt each other.
const DefaultLogOrigin = "takedown.local/audit"

// Flags registers the configuration's flags on fs, with environment fallbacks.
func (c *Config) Flags(fs *flag.FlagSet) {
	d := workflows.DefaultConfig()
	fs.StringVar(&c.HTTP, "http", env("TAKEDOWN_HTTP", "127.0.0.1:8080"), "listen address of UI, API and /healthz (TAKEDOWN_HTTP)")
	fs.StringVar(&c.AdminHTTP, "admin-http", env("TAKEDOWN_ADMIN_HTTP", ""), "worker: listen address of its /healthz, /readyz and /metrics; empty: none (TAKEDOWN_ADMIN_HTTP)")
	fs.StringVar(&c.DataDir, "data-dir", env("TAKEDOWN_DATA_DIR", "./.takedown"), "state of the embedded default (TAKEDOWN_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL connection string (DATABASE_URL); dev falls back to 127.0.0.1:5432, then a private cluster")
	fs.StringVar(&c.TemporalAddress, "temporal-address", env("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend for serve and worker (TEMPORAL_ADDRESS)")
	fs.StringVar(&c.Namespace, "temporal-namespace", env("TEMPORAL_NAMESPACE", "takedown"), "Temporal namespace (TEMPORAL_NAMESPACE)")
	fs.BoolVar(&c.TemporalTLS, "temporal-tls", c.envBool("TEMPORAL_TLS", false), "use TLS to Temporal (TEMPORAL_TLS=true)")
	fs.StringVar(&c.TemporalAPIKey, "temporal-api-key-file", env("TEMPORAL_API_KEY_FILE", ""), "file holding a Temporal Cloud API key, sent over TLS with every call (TEMPORAL_API_KEY_FILE)")
	fs.StringVar(&c.TemporalTLSCert, "temporal-tls-cert", env("TEMPORAL_TLS_CERT", ""), "client certificate for mTLS to Temporal (TEMPORAL_TLS_CERT)")
	fs.StringVar(&c.TemporalTLSKey, "temporal-tls-key", env("TEMPORAL_TLS_KEY", ""), "client key for mTLS to Temporal (TEMPORAL_TLS_KEY)")
	fs.StringVar(&c.TemporalTLSCA, "temporal-tls-ca", env("TEMPORAL_TLS_CA", ""), "CA bundle of the Temporal cluster (TEMPORAL_TLS_CA)")
	fs.StringVar(&c.TemporalTLSServerName, "temporal-tls-server-name", env("TEMPORAL_TLS_SERVER_NAME", ""), "server name in the cluster's certificate (TEMPORAL_TLS_SERVER_NAME)")
	fs.Int64Var(&c.MaxEvidence, "max-evidence", c.envInt("TAKEDOWN_MAX_EVIDENCE", 32<<20), "largest evidence upload in bytes (TAKEDOWN_MAX_EVIDENCE)")
	fs.StringVar(&c.SigningKey, "signing-key", env("TAKEDOWN_SIGNING_KEY", ""), "audit checkpoint signing key, PEM from \"takedownd keygen\" (TAKEDOWN_SIGNING_KEY); dev: <data-dir>/audit.key")
	fs.StringVar(&c.NextSigningKey, "next-signing-key", env("TAKEDOWN_NEXT_SIGNING_KEY", ""), "during a key rotation, a second key that also signs checkpoints (TAKEDOWN_NEXT_SIGNING_KEY)")
	fs.StringVar(&c.AppendKey, "append-key", env("TAKEDOWN_APPEND_KEY", ""), "key file authenticating audit entries, from \"takedownd keygen -append\" (TAKEDOWN_APPEND_KEY); the same file for serve and worker; dev: <data-dir>/append.key")
	fs.StringVar(&c.PayloadKey, "payload-key", env("TAKEDOWN_PAYLOAD_KEY", ""), "key file sealing every payload given to Temporal, from \"takedownd keygen -payload\" (TAKEDOWN_PAYLOAD_KEY); the same file for serve and worker; dev: <data-dir>/payload.key")
	if v := env("TAKEDOWN_CODEC_ORIGINS", ""); v != "" {
		c.CodecOrigins = strings.Split(v, ",")
	}
	fs.Func("codec-origins", "comma-separated browser origins (Temporal's UI) allowed to call /api/v1/codec (TAKEDOWN_CODEC_ORIGINS)", func(v string) error {
		c.CodecOrigins = strings.Split(v, ",")
		return nil
	})
	if v := env("TAKEDOWN_WITNESSES", ""); v != "" {
		c.Witnesses = strings.Split(v, ";")
	}
	fs.Func("witness", "a witness that cosigns checkpoints, as \"URL VKEY\"; repeat for several (TAKEDOWN_WITNESSES, ';'-separated)", func(v string) error {
		c.Witnesses = append(c.Witnesses, v)
		return nil
	})
	fs.BoolVar(&c.PayloadAcceptPlaintext, "payload-accept-plaintext", c.envBool("TAKEDOWN_PAYLOAD_ACCEPT_PLAINTEXT", false), "read unsealed Temporal payloads too, only while measures begun before payload encryption still run: it lets anyone who reaches the cluster send Updates in clear (TAKEDOWN_PAYLOAD_ACCEPT_PLAINTEXT=true)")
	fs.BoolVar(&c.DevWitness, "dev-witness", c.envBool("TAKEDOWN_DEV_WITNESS", true), "dev: run a witness of its own, key and state in <data-dir>/witness, when no -witness is given (TAKEDOWN_DEV_WITNESS)")
	fs.StringVar(&c.LogOrigin, "log-origin", env("TAKEDOWN_LOG_ORIGIN", ""), "the audit log's name in checkpoints, unique among the logs its witnesses cosign, e.g. audit.example.go.jp/takedown; needed by worker and keygen (TAKEDOWN_LOG_ORIGIN); dev: "+DefaultLogOrigin)
	c.durationVar(fs, &c.LogRecheck, "log-recheck", "TAKEDOWN_LOG_RECHECK", 10*time.Minute, "how often the audit sequencer re-hashes the whole log against what it signed; it also does at start (TAKEDOWN_LOG_RECHECK)")
	c.durationVar(fs, &c.ReconcileEvery, "reconcile-every", "TAKEDOWN_RECONCILE_EVERY", time.Minute, "how often dev and worker compare the tables with the signed log, halting it on a difference found twice in a row; 0 never (TAKEDOWN_RECONCILE_EVERY)")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", env("TAKEDOWN_SMTP_ADDR", ""), "SMTP server (host:port) notification e-mail is sent through; empty: no e-mail (TAKEDOWN_SMTP_ADDR)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", env("TAKEDOWN_SMTP_FROM", "takedown@localhost"), "the sender address of notification e-mail (TAKEDOWN_SMTP_FROM)")
	fs.StringVar(&c.SMTPUser, "smtp-user", env("TAKEDOWN_SMTP_USER", ""), "SMTP account; empty: no authentication (TAKEDOWN_SMTP_USER)")
	fs.StringVar(&c.SMTPPassword, "smtp-password", env("TAKEDOWN_SMTP_PASSWORD", ""), "its password; prefer the environment variable (TAKEDOWN_SMTP_PASSWORD)")
	fs.StringVar(&c.SMTPTLS, "smtp-tls", env("TAKEDOWN_SMTP_TLS", "starttls"), "starttls (required), tls (implicit, port 465) or none (a relay on the same host) (TAKEDOWN_SMTP_TLS)")
	fs.BoolVar(&c.WebhookPrivate, "webhook-private", c.envBool("TAKEDOWN_WEBHOOK_PRIVATE", false), "let people's webhooks reach loopback, private and link-local addresses (receivers inside this network); off, the server calls only public addresses (TAKEDOWN_WEBHOOK_PRIVATE=true)")
	c.durationVar(fs, &c.NotifyEvery, "notify-every", "TAKEDOWN_NOTIFY_EVERY", time.Minute, "how often dev and serve plan and send notifications (reminders, deadlines, escalations); 0 never (TAKEDOWN_NOTIFY_EVERY)")
	fs.StringVar(&c.LogLevel, "log-level", env("TAKEDOWN_LOG_LEVEL", "info"), "debug, info, warn or error (TAKEDOWN_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("TAKEDOWN_LOG_FORMAT", "text"), "text or json; every line of a request carries its request_id (TAKEDOWN_LOG_FORMAT)")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", env("TAKEDOWN_OTLP_ENDPOINT", ""), "OpenTelemetry collector receiving traces over OTLP/gRPC, as a URL (http://collector:4317); empty: no traces (TAKEDOWN_OTLP_ENDPOINT)")
	fs.StringVar(&c.TemporalLogLevel, "temporal-log-level", env("TAKEDOWN_TEMPORAL_LOG_LEVEL", "error"), "embedded Temporal server's log level, or off (TAKEDOWN_TEMPORAL_LOG_LEVEL)")
	c.durationVar(fs, &c.TokenTTL, "token-ttl", "TAKEDOWN_TOKEN_TTL", 12*time.Hour, "how long an API token lives (TAKEDOWN_TOKEN_TTL)")
	c.durationVar(fs, &c.RequestTimeout, "request-timeout", "TAKEDOWN_REQUEST_TIMEOUT", 30*time.Second, "deadline of every HTTP request; past it the answer is 504 (TAKEDOWN_REQUEST_TIMEOUT)")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", env("TAKEDOWN_OIDC_ISSUER", ""), "OpenID Connect provider for single sign-on, by its issuer URL (TAKEDOWN_OIDC_ISSUER)")
	fs.StringVar(&c.OIDCClientID, "oidc-client-id", env("TAKEDOWN_OIDC_CLIENT_ID", ""), "this server's client ID at the provider (TAKEDOWN_OIDC_CLIENT_ID)")
	fs.StringVar(&c.OIDCClientSecret, "oidc-client-secret", env("TAKEDOWN_OIDC_CLIENT_SECRET", ""), "its client secret; prefer the environment variable (TAKEDOWN_OIDC_CLIENT_SECRET)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("TAKEDOWN_TLS_CERT", ""), "PEM certificate (chain) to serve HTTPS with, beside -tls-key (TAKEDOWN_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("TAKEDOWN_TLS_KEY", ""), "PEM private key of -tls-cert (TAKEDOWN_TLS_KEY)")
	fs.StringVar(&c.PublicURL, "public-url", env("TAKEDOWN_PUBLIC_URL", ""), "the URL people reach this server at, behind a proxy that terminates TLS: https:// makes cookies Secure and sends HSTS (TAKEDOWN_PUBLIC_URL)")
	fs.Func("trusted-proxies", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client, for throttling and audit (TAKEDOWN_TRUSTED_PROXIES)", func(v string) error {
		ps, err := parsePrefixes(v)
		c.TrustedProxies = ps
		return err
	})
	if v := os.Getenv("TAKEDOWN_TRUSTED_PROXIES"); v != "" {
		ps, err := parsePrefixes(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Sprintf("TAKEDOWN_TRUSTED_PROXIES=%q: %v", v, err))
		}
		c.TrustedProxies = ps
	}
	fs.StringVar(&c.OIDCRedirectURL, "oidc-redirect-url", env("TAKEDOWN_OIDC_REDIRECT_URL", ""), "this server's /auth/oidc/callback as registered at the provider (TAKEDOWN_OIDC_REDIRECT_URL)")
	fs.StringVar(&c.OIDCRolesClaim, "oidc-roles-claim", env("TAKEDOWN_OIDC_ROLES_CLAIM", ""), "claim listing the account's roles (e.g. groups); empty: roles are assigned by administrators (TAKEDOWN_OIDC_ROLES_CLAIM)")
	fs.StringVar(&c.OIDCOrgClaim, "oidc-org-claim", env("TAKEDOWN_OIDC_ORG_CLAIM", ""), "claim that must name the account's organisation; empty: not checked (TAKEDOWN_OIDC_ORG_CLAIM)")
	w := &c.Workflow
	c.durationVar(fs, &w.DecisionTarget, "decision-target", "TAKEDOWN_DECISION_TARGET", d.DecisionTarget, "Commission decision target (TAKEDOWN_DECISION_TARGET)")
	c.durationVar(fs, &w.DecisionTargetUrgent, "decision-target-urgent", "TAKEDOWN_DECISION_TARGET_URGENT", d.DecisionTargetUrgent, "decision target for urgent requests (TAKEDOWN_DECISION_TARGET_URGENT)")
	c.durationVar(fs, &w.ApprovalWindow, "approval-window", "TAKEDOWN_APPROVAL_WINDOW", d.ApprovalWindow, "longest approval window (TAKEDOWN_APPROVAL_WINDOW)")
	c.durationVar(fs, &w.EmergencyNotification, "emergency-notification", "TAKEDOWN_EMERGENCY_NOTIFICATION", d.EmergencyNotification, "deadline to notify the Commission after an emergency measure (TAKEDOWN_EMERGENCY_NOTIFICATION)")
	c.durationVar(fs, &w.PostHocReview, "post-hoc-review", "TAKEDOWN_POST_HOC_REVIEW", d.PostHocReview, "Commission post-hoc review target (TAKEDOWN_POST_HOC_REVIEW)")
	c.durationVar(fs, &w.ReportDue, "report-due", "TAKEDOWN_REPORT_DUE", d.ReportDue, "post-execution report deadline (TAKEDOWN_REPORT_DUE)")
	c.durationVar(fs, &w.NotificationDue, "notification-due", "TAKEDOWN_NOTIFICATION_DUE", d.NotificationDue, "affected-party notification deadline (TAKEDOWN_NOTIFICATION_DUE)")
	fs.IntVar(&w.HistoryLimit, "history-limit", int(c.envInt("TAKEDOWN_HISTORY_LIMIT", int64(d.HistoryLimit))), "workflow history length after which a measure's workflow continues as new (TAKEDOWN_HISTORY_LIMIT)")
	cs := int(c.envInt("TAKEDOWN_COMMISSION_SIZE", int64(d.CommissionSize)))
	qm := int(c.envInt("TAKEDOWN_QUORUM_MEMBERS", int64(d.QuorumMembers)))
	fs.IntVar(&w.CommissionSize, "commission-size", cs, "voting Commission members including the chair (TAKEDOWN_COMMISSION_SIZE)")
	fs.IntVar(&w.QuorumMembers, "quorum-members", qm, "members besides the chair needed for quorum (TAKEDOWN_QUORUM_MEMBERS)")
}

// Validate refuses a configuration that cannot work.
func (c *Config) Validate() error {
	w := c.Workflow
	for name, d := range map[string]time.Duration{"decision-target": w.DecisionTarget, "decision-target-urgent": w.DecisionTargetUrgent,
		"approval-window": w.ApprovalWindow, "emergency-notification": w.EmergencyNotification, "post-hoc-review": w.PostHocReview,
		"report-due": w.ReportDue, "notification-due": w.NotificationDue} {
		if d <= 0 {
			return mustBePositive(name, d)
		}
	}
	for _, f := range c.positive {
		if *f.d <= 0 {
			return mustBePositive(f.flag, *f.d)
		}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second // a Config built without its flags
	}
	if w.HistoryLimit < 0 {
		return fmt.Errorf("-history-limit (%s) must not be negative (0: no limit but Temporal's suggestion), got %d", envName("history-limit"), w.HistoryLimit)
	}
	if _, port, err := net.SplitHostPort(c.HTTP); c.HTTP != "" && (err != nil || port == "") {
		return fmt.Errorf("-http (TAKEDOWN_HTTP) %q: give host:port, e.g. 127.0.0.1:8080", c.HTTP)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || !httpURL(c.PublicURL) || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("-public-url (TAKEDOWN_PUBLIC_URL) %q: give the address people reach the server at, e.g. https://takedown.example.go.jp", c.PublicURL)
		}
	}
	for _, wt := range c.Witnesses {
		w, err := audit.ParseWitness(wt)
		if err != nil {
			return fmt.Errorf("-witness (TAKEDOWN_WITNESSES): %w", err)
		}
		if !httpURL(w.URL) {
			return fmt.Errorf("-witness (TAKEDOWN_WITNESSES) %q: the witness's address must be an http(s) URL with a host, e.g. https://witness.example.org", wt)
		}
	}
	if w.CommissionSize < 1 || w.QuorumMembers < 0 || w.QuorumMembers >= w.CommissionSize {
		return fmt.Errorf("-quorum-members (%d) must be below -commission-size (%d)", w.QuorumMembers, w.CommissionSize)
	}
	if c.SMTPTLS != "" && c.SMTPTLS != "starttls" && c.SMTPTLS != "tls" && c.SMTPTLS != "none" {
		return fmt.Errorf("-smtp-tls %q: starttls, tls or none", c.SMTPTLS)
	}
	if c.SMTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.SMTPAddr); err != nil || port == "" {
			return fmt.Errorf("-smtp-addr %q: give host:port, e.g. mail.example.go.jp:587", c.SMTPAddr)
		}
	}
	if c.NotifyEvery < 0 {
		return fmt.Errorf("-notify-every %v must not be negative (0: never)", c.NotifyEvery)
	}
	if c.LogOrigin == "" {
		c.LogOrigin = DefaultLogOrigin
	}
	if err := CheckOrigin(c.LogOrigin); err != nil {
		return err
	}
	if len(c.envErrs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(c.envErrs, "; "))
	}
	if c.ReconcileEvery < 0 || c.ReconcileEvery > 0 && c.ReconcileEvery < time.Second {
		return fmt.Errorf("-reconcile-every must be 0 (never) or at least 1s, got %s", c.ReconcileEvery)
	}
	if c.MaxEvidence <= 0 {
		return fmt.Errorf("-max-evidence must be positive")
	}
	return nil
}

// httpURL reports whether s is an http(s) URL with a host and, if it names one, a port a
// server can listen on.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return err == nil && n >= 1 && n <= 65535
	}
	return !strings.HasSuffix(u.Host, ":")
}

// mustBePositive names the flag, its variable and the value given.
func mustBePositive(flag string, d time.Duration) error {
	return fmt.Errorf("-%s (%s) must be positive, got %s", flag, envName(flag), d)
}

// envName is the environment variable a flag falls back to.
func envName(flag string) string {
	return "TAKEDOWN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// CheckOrigin refuses a log origin that cannot name a signed note's key: a '+', a space or a
// control character, or text that is not UTF-8 (C2SP signed-note).
func CheckOrigin(origin string) error {
	ok := origin != "" && utf8.ValidString(origin) && !strings.ContainsFunc(origin, func(r rune) bool {
		return r == '+' || unicode.IsSpace(r) || unicode.IsControl(r)
	})
	if !ok {
		return fmt.Errorf("-log-origin %q must not be empty or contain '+', spaces or control characters", origin)
	}
	return nil
}
