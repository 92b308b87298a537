package workflows

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/takedown/takedown/internal/payload"
)

// TestReplayRecordedHistories replays every recorded history (testdata/histories: each path
// through the lifecycle, recorded from a real server by internal/daemon's lifecycle tests,
// see testenv.RecordHistoriesEnv) against the workflow code as it is now. A change to the
// workflow that would make a running measure take another path on its next workflow task,
// without a workflow.GetVersion guard, fails here with a nondeterminism error: running
// measures live for weeks and meet new code (the rule is in the package documentation).
func TestReplayRecordedHistories(t *testing.T) {
	codec, err := payload.Load(filepath.Join("testdata", "histories", "payload.key"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories: %v", err)
	}
	paths := map[string]map[string]bool{} // recorded paths by workflow code revision
	for _, f := range files {
		rev, name := filepath.Base(filepath.Dir(f)), filepath.Base(f)
		if paths[rev] == nil {
			paths[rev] = map[string]bool{}
		}
		paths[rev][name[:strings.LastIndex(name, "-run")]] = true
		t.Run(rev+"/"+name, func(t *testing.T) {
			r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: codec.DataConverter(), FailureConverter: codec.FailureConverter()})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflow(MeasureWorkflow)
			file, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			h, err := client.HistoryFromJSON(file, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The workflow runs only under its measure's ID, which its sealed input names.
			started := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
			var in Input
			if err := codec.DataConverter().FromPayloads(started.GetInput(), &in); err != nil {
				t.Fatal(err)
			}
			exec := workflow.Execution{ID: ID(in.Measure), RunID: started.GetOriginalExecutionRunId()}
			logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
			if err := r.ReplayWorkflowHistoryWithOptions(logger, h, worker.ReplayWorkflowHistoryOptions{OriginalExecution: exec}); err != nil {
				t.Fatalf("the workflow no longer replays %s: %v", f, err)
			}
		})
	}
	// Every revision of the workflow code that running measures may have started under keeps
	// a recording of every path.
	for rev, recorded := range paths {
		for _, p := range []string{"normal-with-return", "emergency", "order-with-information-request", "expiry", "continue-as-new"} {
			if !recorded[p] {
				t.Errorf("%s: no recorded history of the %s path", rev, p)
			}
		}
	}
	if len(paths) < 2 {
		t.Errorf("histories of %d workflow code revisions; the first (v0) and the current are kept", len(paths))
	}
}
