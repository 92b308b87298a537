package daemon

import (
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
