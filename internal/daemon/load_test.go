package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestLoad: TAKEDOWN_LOAD_USERS people (scripts/bench runs 50) work measures through their
// whole lifecycle at once for TAKEDOWN_LOAD_FOR (3m): officers open, submit, report, notify and
// close; legal reviewers, commanders, the chair and two members decide; executors execute;
// each reads the measure's web page before acting, as the pages' users do, and several people
// share each account, so two of them often race for the same action. Nothing may answer 5xx;
// every action answered 2xx must be in the measure's audit history exactly once, and none may
// be there twice; the heap stays bounded. Prints p50 and p99 latency per kind of request,
// actions per second and the peak heap. Skipped unless TAKEDOWN_LOAD_USERS is set.
func TestLoad(t *testing.T) {
	people, _ := strconv.Atoi(os.Getenv("TAKEDOWN_LOAD_USERS"))
	if people <= 0 {
		t.Skip("set TAKEDOWN_LOAD_USERS (scripts/bench runs 50)")
	}
	span := 3 * time.Minute
	if v := os.Getenv("TAKEDOWN_LOAD_FOR"); v != "" {
		var err error
		if span, err = time.ParseDuration(v); err != nil {
			t.Fatalf("TAKEDOWN_LOAD_FOR: %v", err)
		}
	}
	e := testenv.Start(t, workflows.DefaultConfig())
	// Requests are not cut at the end: one cut mid-way may still take effect, which would
	// look like an action in the log that no one was answered for.
	ctx := context.Background()
	end := time.Now().Add(span)

	// Who does what, by stage: the role's account, the action and its body.
	type move struct {
		account, op string
		body        func() any
	}
	none := func() any { return nil }
	moves := map[string][]move{
		"DRAFT":             {{"officer", "submit", none}},
		"LEGAL_REVIEW":      {{"legal", "legal_review", func() any { return legalApproval }}},
		"COMMAND_REVIEW":    {{"commander", "command_review", func() any { return map[string]any{"decision": "approve"} }}},
		"COMMISSION_REVIEW": {{"chair", "vote", func() any { return vote("approve") }}, {"member1", "vote", func() any { return vote("approve") }}, {"member2", "vote", func() any { return vote("approve") }}},
		"APPROVED":          {{"executor", "start_execution", none}},
		"EXECUTING": {{"executor", "log_steps", func() any { return steps(e, time.Now(), "203.0.113.10", "update.example-c2.jp") }},
			{"executor", "finish_execution", none}},
		"EXECUTED": {{"officer", "report", func() any { return map[string]any{"body": "both servers stopped answering"} }}},
		"REPORTED": {{"commander", "verify_report", none}},
		"NOTIFYING": {{"officer", "notify", func() any {
			return map[string]any{"notifications": []map[string]any{{"addressee": "hosting provider", "status": "sent"}}}
		}}, {"officer", "close", none}},
	}
	accounts := []string{"officer", "legal", "commander", "chair", "member1", "member2", "executor"}

	var mu sync.Mutex
	open := map[string]string{}   // measure → stage last seen
	done := map[string][]string{} // measure → "op actor" answered 2xx
	lat := map[string][]time.Duration{}
	var fivexx []string
	var actions, closed int
	refused := map[int]int{} // by status: the race lost to a colleague, mostly
	reasons := map[string][]string{}
	record := func(kind string, d time.Duration) {
		mu.Lock()
		lat[kind] = append(lat[kind], d)
		mu.Unlock()
	}
	newMeasure := func() {
		start := time.Now()
		m := newDraft(t, e, "self_execute", domestic)
		record("open a measure", time.Since(start))
		mu.Lock()
		open[m.ID] = "DRAFT"
		mu.Unlock()
	}
	for range 4 {
		newMeasure()
	}

	var peak uint64
	stopSampling := make(chan struct{})
	go func() {
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapAlloc)
			mu.Unlock()
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Second):
			}
		}
	}()

	var wg sync.WaitGroup
	for p := range people {
		account := accounts[p%len(accounts)]
		api := e.Users[account]
		web := webSession(t, e, account)
		rng := rand.New(rand.NewPCG(uint64(p), 7))
		wg.Go(func() {
			for time.Now().Before(end) {
				// A measure with something for this account to do.
				mu.Lock()
				var ids []string
				for id, stage := range open {
					for _, mv := range moves[stage] {
						if mv.account == account {
							ids = append(ids, id)
							break
						}
					}
				}
				few := len(open) < people/3
				mu.Unlock()
				if len(ids) == 0 {
					if account == "officer" && few {
						newMeasure()
					} else {
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				slices.Sort(ids)
				id := ids[rng.IntN(len(ids))]
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", e.D.URL+"/measures/"+id, nil)
				resp, err := web.Do(req)
				if err == nil {
					resp.Body.Close()
					record("measure page", time.Since(start))
					if resp.StatusCode >= 500 {
						mu.Lock()
						fivexx = append(fivexx, fmt.Sprintf("GET /measures/%s: %s", id, resp.Status))
						mu.Unlock()
					}
				}
				m, err := api.Measure(ctx, id)
				if err != nil {
					continue
				}
				var choices []move
				for _, mv := range moves[m.Stage] {
					if mv.account == account {
						choices = append(choices, mv)
					}
				}
				if len(choices) == 0 {
					mu.Lock()
					if moves[m.Stage] == nil {
						delete(open, id) // closed, or where no one here acts: make room for another
					} else {
						open[id] = m.Stage
					}
					mu.Unlock()
					continue
				}
				mv := choices[rng.IntN(len(choices))]
				if mv.op == "finish_execution" && rng.IntN(2) == 0 {
					mv = choices[0] // log a few steps before finishing
				}
				start = time.Now()
				after, err := api.Act(ctx, id, mv.op, mv.body())
				record(mv.op, time.Since(start))
				var ce *client.Error
				switch {
				case err == nil:
					mu.Lock()
					actions++
					done[id] = append(done[id], mv.op+" "+e.IDs[account])
					if mv.op == "close" {
						closed++
					}
					if moves[after.Stage] == nil {
						delete(open, id)
					} else {
						open[id] = after.Stage
					}
					mu.Unlock()
				case errors.As(err, &ce) && ce.Status >= 500:
					mu.Lock()
					fivexx = append(fivexx, fmt.Sprintf("%s on %s: %d %s", mv.op, id, ce.Status, ce.Message))
					mu.Unlock()
				case errors.As(err, &ce):
					mu.Lock()
					refused[ce.Status]++
					if len(reasons[ce.Code]) < 3 {
						reasons[ce.Code] = append(reasons[ce.Code], mv.op+" in "+m.Stage+": "+ce.Message)
					}
					mu.Unlock()
				default:
					t.Errorf("%s on %s: %v", mv.op, id, err)
				}
			}
		})
	}
	wg.Wait()
	close(stopSampling)

	for _, f := range fivexx {
		t.Errorf("5xx: %s", f)
	}
	// Every action answered 2xx is in the log once; nothing is there twice.
	for id, want := range done {
		h, err := e.Users["auditor"].History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]int{}
		for _, r := range h {
			have[r.Action+" "+r.Actor.ID]++
		}
		counted := map[string]int{}
		for _, w := range want {
			counted[w]++
		}
		for w, n := range counted {
			if have[w] != n {
				t.Errorf("measure %s: %q answered 2xx %d times, in the log %d times", id, w, n, have[w])
			}
		}
		for _, once := range []string{"legal_review", "command_review", "vote", "start_execution", "finish_execution", "report", "verify_report", "close"} {
			for k, n := range have {
				if n > 1 && len(k) > len(once) && k[:len(once)+1] == once+" " {
					t.Errorf("measure %s: %q is in the log %d times", id, k, n)
				}
			}
		}
	}
	t.Logf("%d people for %s: %d actions taken (%.1f/s), %d measures worked on, %d closed, refusals by status %v, peak heap %d MiB",
		people, span, actions, float64(actions)/span.Seconds(), len(done), closed, refused, peak>>20)
	stages := map[string]int{}
	for _, st := range open {
		stages[st]++
	}
	t.Logf("left open, by stage: %v; refusals seen: %q", stages, reasons)
	kinds := make([]string, 0, len(lat))
	for k := range lat {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		d := lat[k]
		slices.Sort(d)
		t.Logf("%-18s tries %5d  p50 %7.1f ms  p99 %7.1f ms", k, len(d), ms(d[len(d)/2]), ms(d[len(d)*99/100]))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
