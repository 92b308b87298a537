package service

import (
	"testing"
	"time"
)

// TestYearBounds: a fiscal year (年度) runs from 1 April to 31 March in JST, a calendar year
// from 1 January; the instant Japan's day turns is the bound, not UTC's.
func TestYearBounds(t *testing.T) {
	for _, tt := range []struct {
		year         int
		fiscal       bool
		from, before string // UTC
	}{
		{2026, true, "2026-03-31T15:00:00Z", "2027-03-31T15:00:00Z"},
		{2026, false, "2025-12-31T15:00:00Z", "2026-12-31T15:00:00Z"},
		{2025, true, "2025-03-31T15:00:00Z", "2026-03-31T15:00:00Z"},
	} {
		from, until := YearBounds(tt.year, tt.fiscal)
		if got := from.UTC().Format(time.RFC3339); got != tt.from {
			t.Errorf("%d fiscal=%v starts %s, want %s", tt.year, tt.fiscal, got, tt.from)
		}
		if got := until.UTC().Format(time.RFC3339); got != tt.before {
			t.Errorf("%d fiscal=%v ends before %s, want %s", tt.year, tt.fiscal, got, tt.before)
		}
	}
}

// TestCurrentYear: the fiscal year a moment falls in, in JST: 31 March 23:59 JST is the fiscal
// year before, 1 April 00:00 JST (31 March 15:00 UTC) the new one.
func TestCurrentYear(t *testing.T) {
	for _, tt := range []struct {
		at     string
		fiscal bool
		want   int
	}{
		{"2027-03-31T14:59:59Z", true, 2026},
		{"2027-03-31T15:00:00Z", true, 2027},
		{"2026-12-31T14:59:59Z", false, 2026},
		{"2026-12-31T15:00:00Z", false, 2027},
		{"2027-02-01T00:00:00Z", true, 2026},
		{"2027-02-01T00:00:00Z", false, 2027},
	} {
		at, _ := time.Parse(time.RFC3339, tt.at)
		if got := CurrentYear(at, tt.fiscal); got != tt.want {
			t.Errorf("%s fiscal=%v: %d, want %d", tt.at, tt.fiscal, got, tt.want)
		}
	}
}
