package daemon_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// bareShape is a workflow of the lifecycle's shape with no domain work: one Update per human
// action, one no-op activity per recorded change (13 actions, 15 changes: the quorum decision
// and the gate check are recorded on their own).
func bareShape(ctx workflow.Context) error {
	updates := 0
	err := workflow.SetUpdateHandlerWithOptions(ctx, "act", func(ctx workflow.Context, op string) (string, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
		calls := 1
		if op == "command_review" || op == "vote3" {
			calls = 2
		}
		for range calls {
			if err := workflow.ExecuteActivity(ctx, bareActivity, op).Get(ctx, nil); err != nil {
				return "", err
			}
		}
		updates++
		return op, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, op string) error { return nil }})
	if err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return updates == len(lifecycleOps) && workflow.AllHandlersFinished(ctx) })
}

func bareActivity(ctx context.Context, op string) error { return nil }

var lifecycleOps = []string{"submit", "legal_review", "command_review", "vote1", "vote2", "vote3", "start_execution",
	"log_steps", "finish_execution", "report", "verify_report", "notify", "close"}

// runConcurrently runs n jobs on `workers` goroutines and returns the jobs per second.
func runConcurrently(b *testing.B, n, workers int, job func(i int) error) float64 {
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan int)
	var mu sync.Mutex
	var firstErr error
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if err := job(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkLifecycle compares whole measure lifecycles driven through the API (HTTP, auth,
// authz, PostgreSQL, audit entries) with bare workflows of the same shape on the same embedded
// Temporal server, in one run.
func BenchmarkLifecycle(b *testing.B) {
	e := testenv.Start(b, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	const workers = 8
	n := max(b.N, 16)

	bc, err := client.NewClientFromExisting(e.D.Temporal, client.Options{Namespace: e.Namespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))})
	if err != nil {
		b.Fatal(err)
	}
	w := worker.New(bc, "bare", worker.Options{})
	w.RegisterWorkflow(bareShape)
	w.RegisterActivity(bareActivity)
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	// Drafts are prepared outside the timed part: the lifecycle starts at submission.
	ids := make([]string, n)
	for i := range n {
		caseID, err := u["officer"].CreateCase(ctx, "bench", "")
		if err != nil {
			b.Fatal(err)
		}
		m, err := u["officer"].CreateMeasure(ctx, caseID, plan("self_execute", e.IDs["executor"]))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := u["officer"].AddTargets(ctx, m.ID, domestic); err != nil {
			b.Fatal(err)
		}
		ids[i] = m.ID
	}
	b.ResetTimer()

	bare := runConcurrently(b, n, workers, func(i int) error {
		id := fmt.Sprintf("bare-%d-%d", time.Now().UnixNano(), i)
		run, err := e.D.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "bare"}, bareShape)
		if err != nil {
			return err
		}
		for _, op := range lifecycleOps {
			h, err := e.D.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: "act", Args: []any{op},
				WaitForStage: client.WorkflowUpdateStageCompleted})
			if err == nil {
				err = h.Get(ctx, nil)
			}
			if err != nil {
				it := e.D.Temporal.GetWorkflowHistory(ctx, id, "", false, 0)
				for it.HasNext() {
					ev, _ := it.Next()
					if f := ev.GetWorkflowTaskFailedEventAttributes(); f != nil {
						return fmt.Errorf("%s: %w: %s", op, err, f.GetFailure().GetMessage())
					}
				}
				return err
			}
		}
		return run.Get(ctx, nil)
	})

	ours := runConcurrently(b, n, workers, func(i int) error {
		id := ids[i]
		type step struct {
			who, op string
			body    map[string]any
		}
		for _, s := range []step{
			{"officer", "submit", nil},
			{"legal", "legal_review", legalApproval},
			{"commander", "command_review", map[string]any{"decision": "approve"}},
			{"chair", "vote", vote("approve")},
			{"member1", "vote", vote("approve")},
			{"member2", "vote", vote("approve")},
			{"executor", "start_execution", nil},
			{"executor", "log_steps", nil}, // timed when sent: the window opens at approval
			{"executor", "finish_execution", nil},
			{"officer", "report", map[string]any{"body": "done"}},
			{"commander", "verify_report", nil},
			{"officer", "notify", map[string]any{"notifications": []map[string]any{{"addressee": "abuse desk", "status": "sent"}}}},
			{"officer", "close", nil},
		} {
			if s.op == "log_steps" {
				s.body = steps(e, time.Now(), "203.0.113.10", "update.example-c2.jp")
			}
			if _, err := u[s.who].Act(ctx, id, s.op, s.body); err != nil {
				return fmt.Errorf("%s %s: %w", id, s.op, err)
			}
		}
		return nil
	})
	b.StopTimer()
	b.ReportMetric(ours, "lifecycles/s")
	b.ReportMetric(bare, "bare-lifecycles/s")
	b.ReportMetric(ours/bare, "ratio")
}
