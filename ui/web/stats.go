package web

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// countRows are the figures of the report, in its order.
var countRows = []struct {
	key string
	of  func(service.Counts) int
}{
	{"requests", func(c service.Counts) int { return c.Requests }},
	{"approvals", func(c service.Counts) int { return c.Approvals }},
	{"rejections", func(c service.Counts) int { return c.Rejections }},
	{"returns", func(c service.Counts) int { return c.Returns }},
	{"emergencies", func(c service.Counts) int { return c.Emergencies }},
	{"post_hoc_accepted", func(c service.Counts) int { return c.PostHocAccepted }},
	{"post_hoc_impropriety", func(c service.Counts) int { return c.PostHocImpropriety }},
	{"targets_abroad", func(c service.Counts) int { return c.TargetsAbroad }},
}

// chartColours tell the four bars apart (dark enough on white for WCAG's 3:1 for graphics).
var chartColours = []string{"#0b4f8a", "#1d5e20", "#a40000", "#8a5a00"}

// chartTop is the bars' scale: the largest of the charted figures, at least 1.
func chartTop(st service.Statistics) int {
	top := 1
	for _, c := range st.Quarters {
		for _, row := range countRows[:4] {
			top = max(top, row.of(c))
		}
	}
	return top
}

// yearOf reads ?year=, this year (JST) when absent.
func yearOf(r *http.Request) (int, error) {
	v := r.URL.Query().Get("year")
	if v == "" {
		return time.Now().In(service.JST).Year(), nil
	}
	y, err := strconv.Atoi(v)
	if err != nil {
		return 0, &measure.FieldError{Field: "year", Message: "must be a year, e.g. 2026"}
	}
	return y, nil
}

// statistics is the page of the annual report's figures.
func (s *Server) statistics(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "statistics")
	year, err := yearOf(r)
	st := service.Statistics{Year: year}
	if err == nil {
		st, err = s.Statistics(r.Context(), actorOf(r), year)
	}
	status := http.StatusOK
	if err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
		st.Year = time.Now().In(service.JST).Year()
	}
	s.render(w, r, status, statsPage(p, st))
}

// statisticsCSV is the same figures as CSV, for the report's tables.
func (s *Server) statisticsCSV(w http.ResponseWriter, r *http.Request) {
	year, err := yearOf(r)
	var st service.Statistics
	if err == nil {
		st, err = s.Statistics(r.Context(), actorOf(r), year)
	}
	if err != nil {
		s.refused(w, r, "statistics", err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="takedown-statistics-%d.csv"`, st.Year))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"year", "period", "figure", "value"})
	for _, row := range countRows {
		for q, c := range st.Quarters {
			_ = cw.Write([]string{strconv.Itoa(st.Year), fmt.Sprintf("Q%d", q+1), row.key, strconv.Itoa(row.of(c))})
		}
		_ = cw.Write([]string{strconv.Itoa(st.Year), "year", row.key, strconv.Itoa(row.of(st.Total))})
	}
	for _, t := range st.Stages {
		y := strconv.Itoa(st.Year)
		_ = cw.Write([]string{y, "year", "stage_" + string(t.Stage) + "_count", strconv.Itoa(t.N)})
		_ = cw.Write([]string{y, "year", "stage_" + string(t.Stage) + "_median_seconds", strconv.FormatInt(int64(t.Median.Seconds()), 10)})
		_ = cw.Write([]string{y, "year", "stage_" + string(t.Stage) + "_p90_seconds", strconv.FormatInt(int64(t.P90.Seconds()), 10)})
	}
	cw.Flush()
}
