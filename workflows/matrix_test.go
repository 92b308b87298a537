package workflows_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/workflows"
)

// The expectations below are written from DESIGN section 4, independently of the Casbin
// policy, the SoD functions and the workflow's stage table they check.

var allStages = []measure.Stage{measure.Draft, measure.LegalReview, measure.CommandReview, measure.Gates, measure.CommissionReview,
	measure.InfoRequested, measure.Approved, measure.Rejected, measure.OrderIssued, measure.Executing, measure.EmergencyExecuting,
	measure.Executed, measure.CommissionNotified, measure.PostHocReviewed, measure.Reported, measure.Notifying, measure.Closed,
	measure.Expired, measure.Withdrawn}

// expectStages: where each operation can happen at all.
var expectStages = map[authz.Op]string{
	authz.OpSubmit:           "DRAFT",
	authz.OpLegalReview:      "LEGAL_REVIEW",
	authz.OpCommandReview:    "COMMAND_REVIEW",
	authz.OpRecordGate:       "GATES EMERGENCY_EXECUTING",
	authz.OpDeclareConflict:  "COMMISSION_REVIEW INFO_REQUESTED COMMISSION_NOTIFIED",
	authz.OpVote:             "COMMISSION_REVIEW",
	authz.OpRequestInfo:      "COMMISSION_REVIEW",
	authz.OpRespondInfo:      "INFO_REQUESTED",
	authz.OpWithdraw:         "DRAFT LEGAL_REVIEW COMMAND_REVIEW GATES COMMISSION_REVIEW INFO_REQUESTED APPROVED ORDER_ISSUED",
	authz.OpIssueOrder:       "APPROVED",
	authz.OpOrderOutcome:     "ORDER_ISSUED",
	authz.OpStartExecution:   "APPROVED ORDER_ISSUED",
	authz.OpLogSteps:         "EXECUTING EMERGENCY_EXECUTING",
	authz.OpFinishExecution:  "EXECUTING EMERGENCY_EXECUTING",
	authz.OpDeclareEmergency: "DRAFT LEGAL_REVIEW COMMAND_REVIEW GATES",
	authz.OpNotifyCommission: "EXECUTED",
	authz.OpPostHocDecision:  "COMMISSION_NOTIFIED",
	authz.OpReport:           "EXECUTED POST_HOC_REVIEWED",
	authz.OpVerifyReport:     "REPORTED",
	authz.OpNotify:           "NOTIFYING",
	authz.OpClose:            "NOTIFYING",
}

// expectRoles: who may take each operation, before separation of duties.
var expectRoles = map[authz.Op]string{
	authz.OpSubmit: "officer", authz.OpLegalReview: "legal", authz.OpCommandReview: "commander",
	authz.OpRecordGate: "commander legal", authz.OpDeclareConflict: "commissioner commission_chair",
	authz.OpVote: "commissioner commission_chair", authz.OpRequestInfo: "commissioner commission_chair commission_secretariat",
	authz.OpRespondInfo: "officer", authz.OpWithdraw: "officer commander", authz.OpIssueOrder: "commander officer",
	authz.OpOrderOutcome: "officer executor", authz.OpStartExecution: "executor", authz.OpLogSteps: "executor",
	authz.OpFinishExecution: "executor", authz.OpDeclareEmergency: "commander", authz.OpNotifyCommission: "commander officer legal",
	authz.OpPostHocDecision: "commissioner commission_chair", authz.OpReport: "officer executor",
	authz.OpVerifyReport: "commander legal", authz.OpNotify: "officer executor", authz.OpClose: "officer commander",
}

var relations = []string{"requester", "legal_reviewer", "commander", "voter", "recused", "executor", "witness", "report_author", "unrelated"}

// expectSoD: whether a person in this relation to the measure may take the operation.
func expectSoD(op authz.Op, rel string) bool {
	switch op {
	case authz.OpSubmit, authz.OpRespondInfo:
		return rel == "requester"
	case authz.OpLegalReview:
		return rel != "requester"
	case authz.OpCommandReview:
		return rel != "requester" && rel != "legal_reviewer"
	case authz.OpVote:
		return rel != "requester" && rel != "legal_reviewer" && rel != "commander" && rel != "voter" && rel != "recused"
	case authz.OpRequestInfo:
		// A recused member takes no part in the Commission's review.
		return rel != "requester" && rel != "legal_reviewer" && rel != "commander" && rel != "recused"
	case authz.OpDeclareConflict:
		// A recusal stands for the whole request.
		return rel != "requester" && rel != "legal_reviewer" && rel != "commander" && rel != "recused"
	case authz.OpStartExecution, authz.OpLogSteps, authz.OpFinishExecution:
		return rel == "executor"
	case authz.OpNotifyCommission:
		return rel != "executor"
	case authz.OpPostHocDecision:
		return rel == "report_author" || rel == "unrelated"
	case authz.OpVerifyReport:
		return rel != "report_author"
	}
	return true
}

func contains(list string, s string) bool { return slices.Contains(strings.Fields(list), s) }

// TestAuthorizationMatrix checks every role, operation, stage and relation to the measure
// against the expectations above, through the Casbin policy, the SoD functions and the
// workflow's stage table together.
func TestAuthorizationMatrix(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ids := map[string]string{"requester": "u-req", "legal_reviewer": "u-leg", "commander": "u-cmd", "voter": "u-voter",
		"recused": "u-rec", "executor": "u-exec", "witness": "u-wit", "report_author": "u-author", "unrelated": "u-other"}
	facts := authz.Facts{Requester: "u-req", LegalReviewer: "u-leg", Commander: "u-cmd", Voters: []string{"u-voter"},
		Recused: []string{"u-rec"}, NamedExecutors: []string{"u-exec"}, Executors: []string{"u-exec"}, ReportAuthor: "u-author",
		Participants: []string{"u-req", "u-leg", "u-cmd", "u-voter", "u-exec", "u-wit"}}
	checked, allowed, mismatches := 0, 0, 0
	for _, role := range authz.Roles {
		// The role granted to every person of the matrix, in one organisation.
		var grants []authz.Grant
		for _, id := range ids {
			grants = append(grants, authz.Grant{User: id, Role: role, Org: "org"})
		}
		az, err := authz.NewAuthorizer("test", authz.DefaultPolicy(), grants)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range authz.Ops {
			if op == authz.OpEditDraft {
				continue
			}
			for _, stage := range allStages {
				for _, rel := range relations {
					a := authz.Actor{ID: ids[rel], Username: rel, Org: "org", Roles: []authz.Role{role}}
					if role == authz.Executor {
						a.Designations = []authz.Designation{{Scope: "npa", ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour)}}
					}
					want := contains(expectStages[op], string(stage)) && contains(expectRoles[op], string(role)) && expectSoD(op, rel)
					err := az.Check(op, a, facts, now)
					got := slices.Contains(workflows.StagesFor(op), stage) && err == nil
					var d *authz.Denied
					if err != nil && !errors.As(err, &d) {
						t.Fatalf("%s %s: %v", role, op, err)
					}
					if got != want {
						mismatches++
						if mismatches <= 20 {
							t.Errorf("%s as %s, %s in %s: got allowed=%v, want %v (%v)", role, rel, op, stage, got, want, err)
						}
					}
					if err != nil && d.Rule == "" {
						t.Errorf("%s as %s, %s: a refusal must name its rule", role, rel, op)
					}
					checked++
					if got {
						allowed++
					}
				}
			}
		}
	}
	t.Logf("checked %d combinations (%d roles x %d operations x %d stages x %d relations): %d allowed, %d mismatches",
		checked, len(authz.Roles), len(authz.Ops)-1, len(allStages), len(relations), allowed, mismatches)
	if mismatches > 0 {
		t.Fatalf("%d mismatches", mismatches)
	}
}
