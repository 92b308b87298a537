package web

import (
	"github.com/takedown/takedown/authz"
)

// form says which inputs the form of an operation has.
type form struct {
	Decisions                          []string
	Reason, Body, Conditions, Conflict bool
	Gate, Steps, Notices, Order        bool
	// Checklist asks the legal reviewer to confirm each statutory requirement.
	Checklist bool
}

// formEncoding is how a decision's form is sent: with a file (the steps' CSV), as multipart.
func formEncoding(op authz.Op) string {
	if forms[op].Steps {
		return "multipart/form-data"
	}
	return "application/x-www-form-urlencoded"
}

var forms = map[authz.Op]form{
	authz.OpLegalReview:      {Decisions: []string{"approve", "return"}, Reason: true, Checklist: true},
	authz.OpCommandReview:    {Decisions: []string{"approve", "return"}, Reason: true},
	authz.OpRecordGate:       {Gate: true},
	authz.OpDeclareConflict:  {Conflict: true, Reason: true},
	authz.OpVote:             {Decisions: []string{"approve", "return", "reject"}, Reason: true, Conditions: true},
	authz.OpRequestInfo:      {Reason: true},
	authz.OpWithdraw:         {Reason: true},
	authz.OpDeclareEmergency: {Reason: true},
	authz.OpRespondInfo:      {Body: true},
	authz.OpReport:           {Body: true},
	authz.OpNotifyCommission: {Body: true},
	authz.OpPostHocDecision:  {Decisions: []string{"accepted", "impropriety"}, Body: true},
	authz.OpOrderOutcome:     {Decisions: []string{"complied", "not_complied"}},
	authz.OpIssueOrder:       {Order: true},
	authz.OpLogSteps:         {Steps: true},
	authz.OpNotify:           {Notices: true},
}
