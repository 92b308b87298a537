package daemon

import (
	"flag"
	"strings"
	"testing"
	"time"

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
	for _, tc := range []struct{ name, value string }{{"TAKEDOWN_RECONCILE_EVERY", "garbage"}, {"TAKEDOWN_TOKEN_TTL", "12"}, {"TAKEDOWN_MAX_EVIDENCE", "32MB"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			var c Config
			c.Flags(flag.NewFlagSet("test", flag.ContinueOnError))
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.name) {
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
