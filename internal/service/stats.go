package service

import (
	"context"
	"fmt"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// Counts are one period's figures for the Commission's annual report to the Diet.
type Counts struct {
	Requests    int `json:"requests"`    // approval requests put before the Commission (each version)
	Approvals   int `json:"approvals"`   // decisions approving
	Rejections  int `json:"rejections"`  // decisions rejecting
	Returns     int `json:"returns"`     // decisions returning the request for changes
	Emergencies int `json:"emergencies"` // measures taken on the emergency path
	// PostHocAccepted and PostHocImpropriety are the Commission's findings on emergencies.
	PostHocAccepted    int `json:"post_hoc_accepted"`
	PostHocImpropriety int `json:"post_hoc_impropriety"`
	// TargetsAbroad counts the targets abroad of the versions approved or taken in an emergency.
	TargetsAbroad int `json:"targets_abroad"`
}

// StageTime is how long measures stayed in a stage they left during the year.
type StageTime struct {
	Stage  measure.Stage `json:"stage"`
	N      int           `json:"n"`
	Median time.Duration `json:"median"`
	P90    time.Duration `json:"p90"`
}

// Statistics is a year (JST) by quarter, with the year's total and the time spent in each
// stage: a calendar year, or a fiscal year (年度, April to March, as Japanese government reports
// are kept), whose first quarter is April to June.
type Statistics struct {
	Year   int  `json:"year"`
	Fiscal bool `json:"fiscal"`
	// From and Until bound the year: From included, Until not.
	From     time.Time   `json:"from"`
	Until    time.Time   `json:"until"`
	Quarters [4]Counts   `json:"quarters"`
	Total    Counts      `json:"total"`
	Stages   []StageTime `json:"stages"`
}

// YearBounds is the start (included) and end (not) of a calendar or fiscal year in JST: fiscal
// year 2026 (令和8年度) runs from 1 April 2026 to 31 March 2027.
func YearBounds(year int, fiscal bool) (from, until time.Time) {
	month := time.January
	if fiscal {
		month = time.April
	}
	return time.Date(year, month, 1, 0, 0, 0, 0, JST), time.Date(year+1, month, 1, 0, 0, 0, 0, JST)
}

// CurrentYear is the calendar or fiscal year (JST) now falls in: in January to March the
// fiscal year is the one that began the April before.
func CurrentYear(now time.Time, fiscal bool) int {
	t := now.In(JST)
	if fiscal && t.Month() < time.April {
		return t.Year() - 1
	}
	return t.Year()
}

// Statistics counts what happened in year (a fiscal year when fiscal) over the measures a may
// read: the Commission and auditors see every measure put before the Commission; an agency its
// own.
func (s *Service) Statistics(ctx context.Context, a authz.Actor, year int, fiscal bool) (Statistics, error) {
	// The year's end must be a time JSON can write (RFC 3339 stops at 9999).
	if year < 2000 || year > 9998 {
		return Statistics{}, &measure.FieldError{Field: "year", Message: "must be a year from 2000 to 9998"}
	}
	st := Statistics{Year: year, Fiscal: fiscal}
	st.From, st.Until = YearBounds(year, fiscal)
	args := readable(s.reads().Scope(a))
	args["start"], args["end"] = st.From, st.Until
	// A fiscal year's quarters are the calendar's three months later.
	args["shift"] = "0 months"
	if fiscal {
		args["shift"] = "3 months"
	}
	const mine = `mine AS (SELECT m.id FROM measures m JOIN cases c ON c.id = m.case_id WHERE ` + measureReadable + `),
		h AS (SELECT h.measure_id, h.stage, h.version, h.entered_at,
				LAG(h.stage) OVER w AS prev, LEAD(h.entered_at) OVER w AS left_at
			FROM stage_history h JOIN mine ON mine.id = h.measure_id
			WINDOW w AS (PARTITION BY h.measure_id ORDER BY h.entered_at))`
	rows, err := s.DB.Query(ctx, `WITH `+mine+`
		SELECT extract(quarter FROM (h.entered_at AT TIME ZONE 'Asia/Tokyo') - @shift::interval)::int,
			count(*) FILTER (WHERE h.stage = 'COMMISSION_REVIEW' AND h.prev IS DISTINCT FROM 'INFO_REQUESTED'),
			count(*) FILTER (WHERE h.stage = 'APPROVED'),
			count(*) FILTER (WHERE h.stage = 'REJECTED'),
			count(*) FILTER (WHERE h.stage = 'DRAFT' AND h.prev = 'COMMISSION_REVIEW'),
			count(*) FILTER (WHERE h.stage = 'EMERGENCY_EXECUTING'),
			COALESCE(sum((SELECT count(*) FROM targets t WHERE t.measure_id = h.measure_id AND t.version = h.version AND t.location = 'abroad'))
				FILTER (WHERE h.stage IN ('APPROVED', 'EMERGENCY_EXECUTING')), 0)::int
		FROM h WHERE h.entered_at >= @start AND h.entered_at < @end GROUP BY 1`, args)
	if err != nil {
		return st, fmt.Errorf("count the year's stages: %w", err)
	}
	for rows.Next() {
		var q int
		var c Counts
		if err := rows.Scan(&q, &c.Requests, &c.Approvals, &c.Rejections, &c.Returns, &c.Emergencies, &c.TargetsAbroad); err != nil {
			rows.Close()
			return st, fmt.Errorf("count the year's stages: %w", err)
		}
		if q >= 1 && q <= 4 {
			st.Quarters[q-1] = c
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("count the year's stages: %w", err)
	}
	rows, err = s.DB.Query(ctx, `WITH `+mine+`
		SELECT extract(quarter FROM (r.at AT TIME ZONE 'Asia/Tokyo') - @shift::interval)::int, count(*) FILTER (WHERE r.decision = 'accepted'),
			count(*) FILTER (WHERE r.decision = 'impropriety')
		FROM reviews r JOIN mine ON mine.id = r.measure_id
		WHERE r.kind = 'post_hoc' AND r.at >= @start AND r.at < @end GROUP BY 1`, args)
	if err != nil {
		return st, fmt.Errorf("count post-hoc findings: %w", err)
	}
	for rows.Next() {
		var q, acc, imp int
		if err := rows.Scan(&q, &acc, &imp); err != nil {
			rows.Close()
			return st, fmt.Errorf("count post-hoc findings: %w", err)
		}
		if q >= 1 && q <= 4 {
			st.Quarters[q-1].PostHocAccepted, st.Quarters[q-1].PostHocImpropriety = acc, imp
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("count post-hoc findings: %w", err)
	}
	for _, c := range st.Quarters {
		st.Total.Requests += c.Requests
		st.Total.Approvals += c.Approvals
		st.Total.Rejections += c.Rejections
		st.Total.Returns += c.Returns
		st.Total.Emergencies += c.Emergencies
		st.Total.PostHocAccepted += c.PostHocAccepted
		st.Total.PostHocImpropriety += c.PostHocImpropriety
		st.Total.TargetsAbroad += c.TargetsAbroad
	}
	rows, err = s.DB.Query(ctx, `WITH `+mine+`
		SELECT h.stage, count(*),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM h.left_at - h.entered_at)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM h.left_at - h.entered_at))
		FROM h WHERE h.left_at >= @start AND h.left_at < @end GROUP BY h.stage`, args)
	if err != nil {
		return st, fmt.Errorf("time the year's stages: %w", err)
	}
	byStage := map[measure.Stage]StageTime{}
	for rows.Next() {
		var t StageTime
		var med, p90 float64
		if err := rows.Scan(&t.Stage, &t.N, &med, &p90); err != nil {
			rows.Close()
			return st, fmt.Errorf("time the year's stages: %w", err)
		}
		t.Median, t.P90 = time.Duration(med*float64(time.Second)), time.Duration(p90*float64(time.Second))
		byStage[t.Stage] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("time the year's stages: %w", err)
	}
	// In the lifecycle's order (a map has none).
	for _, stage := range Stages {
		if t, ok := byStage[stage]; ok {
			st.Stages = append(st.Stages, t)
		}
	}
	return st, nil
}

// Stages are the lifecycle's stages in order, for lists, filters and counts.
var Stages = []measure.Stage{"DRAFT", "LEGAL_REVIEW", "COMMAND_REVIEW", "GATES", "COMMISSION_REVIEW", "INFO_REQUESTED", "APPROVED",
	"ORDER_ISSUED", "EXECUTING", "EMERGENCY_EXECUTING", "EXECUTED", "COMMISSION_NOTIFIED", "POST_HOC_REVIEWED", "REPORTED", "NOTIFYING",
	"CLOSED", "REJECTED", "EXPIRED", "WITHDRAWN"}
