package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/takedown/takedown/workflows"
)

// RecordHistoriesEnv names the directory RecordHistory writes into; unset, it writes nothing.
// The workflows package documentation gives the command that records the histories its
// replay test reads, one directory per workflow code change.
const RecordHistoriesEnv = "TAKEDOWN_RECORD_HISTORIES"

// recordingKey is the payload key histories are recorded under, kept in the directory above
// them: the replay decodes what the workflow was given with it. It protects nothing but test
// data.
func recordingKey() string {
	dir := os.Getenv(RecordHistoriesEnv)
	if dir == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(filepath.Clean(dir)), "payload.key")
}

// RecordHistory writes every run of the measure's workflow (a continued-as-new one has
// several) as NAME-runN.json, in the JSON Temporal's CLI and replayer read.
func RecordHistory(t testing.TB, e *Env, measureID, name string) {
	t.Helper()
	dir := os.Getenv(RecordHistoriesEnv)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var runs []*historypb.History
	for runID := ""; ; {
		it := e.D.Temporal.GetWorkflowHistory(ctx, workflows.ID(measureID), runID, false, 0)
		h := &historypb.History{}
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("read the history of %s: %v", measureID, err)
			}
			h.Events = append(h.Events, ev)
		}
		runs = append(runs, h)
		runID = h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if runID == "" {
			break
		}
	}
	slices.Reverse(runs)
	for i, h := range runs {
		b, err := protojson.MarshalOptions{Indent: " "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-run%d.json", name, i+1)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
