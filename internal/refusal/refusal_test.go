package refusal

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/sdk/temporal"

	"github.com/takedown/takedown/audit"
)

// TestErrorClasses: what the client sent and the database refuses is a refusal of the input;
// a deployment fault is neither retried nor blamed on the client; everything else is retried.
func TestErrorClasses(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("record: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	for _, c := range []struct {
		name       string
		err        error
		input, ops bool
	}{
		{"NUL in text (22021)", pg("22021"), true, false},
		{"value too long (22001)", pg("22001"), true, false},
		{"unknown witness (23503)", pg("23503"), true, false},
		{"duplicate (23505)", pg("23505"), true, false},
		{"index row too large (54000)", pg("54000"), true, false},
		{"record over 64 KiB", fmt.Errorf("append: %w", audit.ErrTooLarge), true, false},
		{"missing privilege (42501)", pg("42501"), false, true},
		{"missing table (42P01)", pg("42P01"), false, true},
		{"serialization failure (40001)", pg("40001"), false, false},
		{"connection lost (08006)", pg("08006"), false, false},
		{"aborted transaction (25P02)", pg("25P02"), false, false},
		{"no database error", errors.New("dial tcp: connection refused"), false, false},
	} {
		if got := Permanent(c.err) != nil; got != c.input {
			t.Errorf("%s: refusal of the input %v, want %v", c.name, got, c.input)
		}
		if got := Misconfigured(c.err); got != c.ops {
			t.Errorf("%s: deployment fault %v, want %v", c.name, got, c.ops)
		}
	}
}

// TestCarriedHalts: an action refused by a halt is 503; one refused by a start-up check, which
// ends in seconds, also says when to try again.
func TestCarriedHalts(t *testing.T) {
	for _, c := range []struct {
		msg   string
		retry time.Duration
	}{
		{"the audit log has stopped signing (witness w1 refused): an operator must investigate", 0},
		{StartupCheck, 2 * time.Second},
	} {
		e, audited, ok := Carried(fmt.Errorf("update: %w", temporal.NewNonRetryableApplicationError(c.msg, TypeHalted, nil)))
		if !ok || audited || e.Status != 503 || e.Code != Unavailable || e.RetryAfter != c.retry || e.Message != c.msg {
			t.Errorf("Carried(%q) = %+v, %v, %v; want 503 with Retry-After %v", c.msg, e, audited, ok, c.retry)
		}
	}
}
