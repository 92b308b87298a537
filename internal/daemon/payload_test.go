package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	temporalclient "go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/takedown/takedown/internal/devenv"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/payload"
	"github.com/takedown/takedown/workflows"
)

// rawHistory reads a measure's workflow history as anyone with access to the Temporal cluster
// would: without the payload key.
func rawHistory(t *testing.T, ctx context.Context, hostPort, measureID string) []*historypb.HistoryEvent {
	t.Helper()
	raw, err := temporalclient.DialContext(ctx, temporalclient.Options{HostPort: hostPort, Namespace: devenv.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	it := raw.GetWorkflowHistory(ctx, workflows.ID(measureID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	return events
}

// payloadsOf finds every Payload anywhere in m but in search attributes, which Temporal must
// read to index (they carry the stage, organisation ID, emergency flag and deadline only).
func payloadsOf(m protoreflect.Message) []*commonpb.Payload {
	switch x := m.Interface().(type) {
	case *commonpb.Payload:
		return []*commonpb.Payload{x}
	case *commonpb.SearchAttributes:
		return nil
	}
	var out []*commonpb.Payload
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				out = append(out, payloadsOf(v.List().Get(i).Message())...)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				out = append(out, payloadsOf(mv.Message())...)
				return true
			})
		case fd.Message() != nil && !fd.IsMap() && !fd.IsList():
			out = append(out, payloadsOf(v.Message())...)
		}
		return true
	})
	return out
}

// checkHistorySealed: the cluster holds the measure's history with every payload sealed and
// none of secrets in clear anywhere; the codec endpoint opens it for an auditor, and for
// nobody else.
func checkHistorySealed(t *testing.T, ctx context.Context, hostPort, measureID, baseURL, auditorToken, officerToken string, secrets ...string) {
	t.Helper()
	events := rawHistory(t, ctx, hostPort, measureID)
	var payloads []*commonpb.Payload
	for _, e := range events {
		raw, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("event %d (%s) holds %q in clear", e.EventId, e.EventType, s)
			}
		}
		payloads = append(payloads, payloadsOf(e.ProtoReflect())...)
	}
	if len(payloads) < 3 {
		t.Fatalf("the history holds %d payloads; expected the input, an Update and activity results", len(payloads))
	}
	for _, p := range payloads {
		if got := string(p.Metadata["encoding"]); got != payload.Encoding {
			t.Fatalf("a payload in the cluster is %q, not sealed", got)
		}
	}
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "POST", baseURL+"/api/v1/codec/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", devenv.Namespace)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	for who, token := range map[string]string{"no one": "", "an officer": officerToken} {
		if code, out := decode(token); code < 400 || code >= 500 || strings.Contains(out, secrets[0]) {
			t.Errorf("the codec endpoint for %s: %d %.200s", who, code, out)
		}
	}
	code, out := decode(auditorToken)
	if code != 200 {
		t.Fatalf("the codec endpoint for an auditor: %d %s", code, out)
	}
	var opened struct {
		Payloads []struct {
			Metadata map[string]string
			Data     string
		}
	}
	if err := json.Unmarshal([]byte(out), &opened); err != nil {
		t.Fatal(err)
	}
	var clear strings.Builder
	for _, p := range opened.Payloads {
		data, _ := base64.StdEncoding.DecodeString(p.Data)
		fmt.Fprintf(&clear, "%s\n", data)
	}
	for _, s := range secrets {
		if !strings.Contains(clear.String(), s) {
			t.Errorf("the decoded history does not hold %q", s)
		}
	}
}

// findByStage lists workflows as `temporal workflow list --query` does and expects the
// measure's among them (visibility follows within seconds).
func findByStage(t *testing.T, ctx context.Context, hostPort, measureID, query string) {
	t.Helper()
	raw, err := temporalclient.DialContext(ctx, temporalclient.Options{HostPort: hostPort, Namespace: devenv.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	err = eventually(t, func() error {
		res, err := raw.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: devenv.Namespace, Query: query})
		if err != nil {
			return err
		}
		for _, e := range res.Executions {
			if e.Execution.WorkflowId == workflows.ID(measureID) {
				return nil
			}
		}
		return fmt.Errorf("%q finds %d workflows, not %s", query, len(res.Executions), workflows.ID(measureID))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// forgeUpdate sends a legal review of measureID in clear, with no payload key, as someone who
// reaches the Temporal cluster could: it must be refused.
func forgeUpdate(t *testing.T, ctx context.Context, hostPort, measureID, legalID, digest string) {
	t.Helper()
	tc, err := temporalclient.DialContext(ctx, temporalclient.Options{HostPort: hostPort, Namespace: devenv.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	forged := map[string]any{"op": "legal_review", "actor": map[string]any{"id": legalID, "username": "legal", "org": "npa", "roles": []string{"legal"}},
		"policy_version": "v1", "decision": "approve", "checklist": measure.LegalRequirements, "digest": digest}
	uctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	h, err := tc.UpdateWorkflow(uctx, temporalclient.UpdateWorkflowOptions{WorkflowID: workflows.ID(measureID), UpdateName: workflows.UpdateAct,
		Args: []any{forged}, WaitForStage: temporalclient.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(uctx, nil)
	}
	if err == nil {
		t.Fatal("a legal review sent in clear was carried out")
	}
}
