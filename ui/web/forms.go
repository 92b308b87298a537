package web

import (
	"errors"
	"net/http"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
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

// readForm reads a posted form of at most limit bytes: a larger one is refused as too large
// rather than read as empty, and a body that is not a form is refused as such.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return refusal.New(refusal.TooLarge, "request body is over the %d-byte limit", mbe.Limit)
		}
		return &measure.FieldError{Field: "form", Message: "is not a form this page sent"}
	}
	return nil
}
