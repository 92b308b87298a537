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

// yearOf reads ?year=, this calendar or fiscal year (JST) when absent.
func yearOf(r *http.Request, fiscal bool) (int, error) {
	v := r.URL.Query().Get("year")
	if v == "" {
		return service.CurrentYear(time.Now(), fiscal), nil
	}
	y, err := strconv.Atoi(v)
	if err != nil {
		return 0, &measure.FieldError{Field: "year", Message: "must be a year, e.g. 2026"}
	}
	return y, nil
}

// fiscalOf reads ?basis=: fiscal (年度, April to March) or calendar, the default.
func fiscalOf(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("basis") {
	case "", "calendar":
		return false, nil
	case "fiscal":
		return true, nil
	}
	return false, &measure.FieldError{Field: "basis", Message: "must be calendar or fiscal"}
}

// periodOf reads the year and its basis.
func periodOf(r *http.Request) (year int, fiscal bool, err error) {
	if fiscal, err = fiscalOf(r); err == nil {
		year, err = yearOf(r, fiscal)
	}
	return year, fiscal, err
}

// statistics is the page of the annual report's figures.
func (s *Server) statistics(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "statistics")
	year, fiscal, err := periodOf(r)
	st := service.Statistics{Year: year, Fiscal: fiscal}
	if err == nil {
		st, err = s.Statistics(r.Context(), actorOf(r), year, fiscal)
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
	year, fiscal, err := periodOf(r)
	var st service.Statistics
	if err == nil {
		st, err = s.Statistics(r.Context(), actorOf(r), year, fiscal)
	}
	if err != nil {
		s.refused(w, r, "statistics", err)
		return
	}
	// A fiscal year is named FY2026 (令和8年度 runs from April 2026), a calendar year 2026.
	y := strconv.Itoa(st.Year)
	if st.Fiscal {
		y = "FY" + y
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="takedown-statistics-%s.csv"`, y))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"year", "period", "figure", "value"})
	for _, row := range countRows {
		for q, c := range st.Quarters {
			_ = cw.Write([]string{y, fmt.Sprintf("Q%d", q+1), row.key, strconv.Itoa(row.of(c))})
		}
		_ = cw.Write([]string{y, "year", row.key, strconv.Itoa(row.of(st.Total))})
	}
	for _, t := range st.Stages {
		_ = cw.Write([]string{y, "year", "stage_" + string(t.Stage) + "_count", strconv.Itoa(t.N)})
		_ = cw.Write([]string{y, "year", "stage_" + string(t.Stage) + "_median_seconds", strconv.FormatInt(int64(t.Median.Seconds()), 10)})
		_ = cw.Write([]string{y, "year", "stage_" + string(t.Stage) + "_p90_seconds", strconv.FormatInt(int64(t.P90.Seconds()), 10)})
	}
	cw.Flush()
}

func basisName(fiscal bool) string {
	if fiscal {
		return "fiscal"
	}
	return "calendar"
}

// periodName says which year the figures are of, with its first and last day.
func periodName(lang string, st service.Statistics) string {
	first, last := st.From.Format("2006-01-02"), st.Until.AddDate(0, 0, -1).Format("2006-01-02")
	switch {
	case st.Fiscal && lang == English:
		return fmt.Sprintf("Fiscal year %d: %s to %s; Q1 is April to June", st.Year, first, last)
	case st.Fiscal:
		return fmt.Sprintf("%d年度（%s〜%s、第1四半期は4〜6月）", st.Year, first, last)
	case lang == English:
		return fmt.Sprintf("Calendar year %d: %s to %s", st.Year, first, last)
	}
	return fmt.Sprintf("%d年（%s〜%s）", st.Year, first, last)
}
