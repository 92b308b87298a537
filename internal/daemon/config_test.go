package daemon

import (
	"crypto/ed25519"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"

	"github.com/takedown/takedown/workflows"
)

// TestReconcileEveryBounds: the background comparison runs never (0) or at most once a
// second; a careless value is refused at start, naming the flag.
func TestReconcileEveryBounds(t *testing.T) {
	for _, tc := range []struct {
		every time.Duration
		ok    bool
	}{{0, true}, {time.Second, true}, {time.Minute, true}, {-time.Second, false}, {time.Nanosecond, false}, {999 * time.Millisecond, false}} {
		c := Config{Workflow: workflows.DefaultConfig(), MaxEvidence: 1, ReconcileEvery: tc.every}
		err := c.Validate()
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "-reconcile-every") {
			t.Errorf("-reconcile-every %s: %v", tc.every, err)
		}
	}
}

// TestEnvironmentTyposAreRefused: a duration or a number in the environment that does not
// parse is refused at start, naming the variable, as the flag would be, not replaced by the
// default.
func TestEnvironmentTyposAreRefused(t *testing.T) {
	for _, tc := range []struct{ name, value string }{{"TAKEDOWN_RECONCILE_EVERY", "garbage"}, {"TAKEDOWN_TOKEN_TTL", "12"}, {"TAKEDOWN_MAX_EVIDENCE", "32MB"},
		{"TAKEDOWN_APPROVAL_WINDOW", "14 days"}, {"TAKEDOWN_APPROVAL_WINDOW", "2w"}, {"TEMPORAL_TLS", "yes"}, {"TAKEDOWN_DEV_WITNESS", "off"},
		{"TAKEDOWN_WEBHOOK_PRIVATE", "ture"}, {"TAKEDOWN_TRUSTED_PROXIES", "10.0.0.0/8,10.1"}, {"TAKEDOWN_HISTORY_LIMIT", "1e4"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			var c Config
			c.Flags(flag.NewFlagSet("test", flag.ContinueOnError))
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.value) {
				t.Fatalf("%s=%s: %v", tc.name, tc.value, err)
			}
		})
	}
	t.Setenv("TAKEDOWN_RECONCILE_EVERY", "5m")
	var c Config
	c.Flags(flag.NewFlagSet("test", flag.ContinueOnError))
	if err := c.Validate(); err != nil || c.ReconcileEvery != 5*time.Minute {
		t.Fatalf("TAKEDOWN_RECONCILE_EVERY=5m: %s (%v)", c.ReconcileEvery, err)
	}
}

// TestDurationsReadDays: an approval window is written in days in the law and on the measure
// forms; the flag and its variable read 14d as 14 days (336h), not as an error or 0.
func TestDurationsReadDays(t *testing.T) {
	t.Setenv("TAKEDOWN_APPROVAL_WINDOW", "14d")
	t.Setenv("TEMPORAL_TLS", "TRUE")
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"-report-due", "1d12h", "-token-ttl", "90m"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Workflow.ApprovalWindow != 14*24*time.Hour || c.Workflow.ReportDue != 36*time.Hour || c.TokenTTL != 90*time.Minute || !c.TemporalTLS {
		t.Fatalf("approval window %v, report due %v, token TTL %v, TLS %v", c.Workflow.ApprovalWindow, c.Workflow.ReportDue, c.TokenTTL, c.TemporalTLS)
	}
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Flags(fs)
	err := fs.Parse([]string{"-approval-window", "14 days"})
	if err == nil || !strings.Contains(err.Error(), "-approval-window") || !strings.Contains(err.Error(), "14 days") {
		t.Fatalf("-approval-window '14 days': %v", err)
	}
}

// FuzzConfigValues: what an operator types for a duration or the trusted proxies, in a flag
// or a variable. Nothing panics; a duration read is never negative unless Go's own form says
// so, and -h shows it in a form that reads back to the same value.
func FuzzConfigValues(f *testing.F) {
	for _, s := range []string{"14d", "1d12h", "90m", "-5s", "9999d", "d", "0", "2w", "1e9h", " 3d ", "10.0.0.0/8, ::1", "10.1", ",,", "fe80::1%eth0/64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parsePrefixes(s)
		var d durationValue
		if d.Set(s) != nil {
			return
		}
		var back durationValue
		if err := back.Set(d.String()); err != nil || back != d {
			t.Fatalf("%q reads as %v, shown as %q, which reads back as %v (%v)", s, time.Duration(d), d.String(), time.Duration(back), err)
		}
	})
}

// TestConfigOutOfRangeIsRefused: a value that parses but cannot work stops the program at start,
// naming the flag, its variable and the value, whether given as a flag or in the environment.
func TestConfigOutOfRangeIsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  [2]string
		says []string
	}{
		{args: []string{"-token-ttl", "0"}, says: []string{"-token-ttl", "TAKEDOWN_TOKEN_TTL", "0s"}},
		{args: []string{"-request-timeout", "0"}, says: []string{"-request-timeout", "TAKEDOWN_REQUEST_TIMEOUT", "0s"}},
		{env: [2]string{"TAKEDOWN_LOG_RECHECK", "0s"}, says: []string{"-log-recheck", "TAKEDOWN_LOG_RECHECK", "0s"}},
		{env: [2]string{"TAKEDOWN_APPROVAL_WINDOW", "-1h"}, says: []string{"-approval-window", "TAKEDOWN_APPROVAL_WINDOW", "-1h"}},
		{args: []string{"-history-limit", "-5"}, says: []string{"-history-limit", "TAKEDOWN_HISTORY_LIMIT", "-5"}},
		{args: []string{"-public-url", "notaurl"}, says: []string{"-public-url", "TAKEDOWN_PUBLIC_URL", "notaurl"}},
		{args: []string{"-public-url", "https://"}, says: []string{"-public-url", "https://"}},
		{args: []string{"-witness", "garbage"}, says: []string{"-witness", "TAKEDOWN_WITNESSES", "garbage"}},
		{env: [2]string{"TAKEDOWN_WITNESSES", "https://w.example key"}, says: []string{"-witness", "TAKEDOWN_WITNESSES"}},
		{env: [2]string{"TAKEDOWN_HTTP", "bogus"}, says: []string{"-http", "TAKEDOWN_HTTP", "bogus"}},
		{args: []string{"-witness", "notaurl " + witnessKey}, says: []string{"-witness", "TAKEDOWN_WITNESSES", "notaurl"}},
		{args: []string{"-witness", "ftp://w.example " + witnessKey}, says: []string{"-witness", "ftp://w.example"}},
		{args: []string{"-witness", "http://127.0.0.1:99999 " + witnessKey}, says: []string{"-witness", "99999"}},
		{args: []string{"-public-url", "https://x.example:99999"}, says: []string{"-public-url", "99999"}},
		{args: []string{"-public-url", "http://user:pw@x.example"}, says: []string{"-public-url"}},
	} {
		t.Run(strings.Join(append(tc.args, tc.env[:]...), " "), func(t *testing.T) {
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			var c Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			c.Flags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%v: does not name %q", err, s)
				}
			}
		})
	}
	// A witness written right is taken.
	c0 := Config{}
	fs0 := flag.NewFlagSet("test", flag.ContinueOnError)
	c0.Flags(fs0)
	if err := fs0.Parse([]string{"-witness", "https://witness.example.org:8443 " + witnessKey}); err != nil {
		t.Fatal(err)
	}
	if err := c0.Validate(); err != nil {
		t.Fatalf("a witness written right: %v", err)
	}
	// 0 stays "never" where it means that.
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse([]string{"-notify-every", "0", "-reconcile-every", "0", "-public-url", "https://takedown.example.go.jp/"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("-notify-every 0 -reconcile-every 0: %v", err)
	}
}

// witnessKey is a well-formed witness verifier key, so the tests of a witness's address see
// that address judged.
var witnessKey = func() string {
	s, err := torchwood.NewCosignatureSigner("witness.example.org", ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	return s.Verifier().String()
}()
