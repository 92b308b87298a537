package measure

import (
	"fmt"
	"slices"
	"time"

	"github.com/takedown/takedown/authz"
)

// Action is one human decision or report on a measure, as the API sends it to the workflow.
// Which fields matter depends on Op; the rest stay empty.
type Action struct {
	Op    authz.Op    `json:"op"`
	Actor authz.Actor `json:"actor"` // set by the server from the authenticated session, never by the client
	// Decision is the choice made: approve|return for reviews; approve|reject|return for votes;
	// complied|not_complied for an order's outcome; accepted|impropriety for a post-hoc review.
	Decision   string   `json:"decision,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Conditions []string `json:"conditions,omitempty"`
	// Checklist is, for a legal review, the statutory requirements the reviewer confirms
	// (LegalRequirements): an approval confirms every one.
	Checklist []string `json:"checklist,omitempty"`
	// Conflicted is a Commission member's declaration for this request.
	Conflicted bool `json:"conflicted,omitempty"`
	// Gate is foreign_ministry or pm_order; Reference names the consultation or order document.
	Gate      string `json:"gate,omitempty"`
	Reference string `json:"reference,omitempty"`
	Order     *Order `json:"order,omitempty"`
	Steps     []Step `json:"steps,omitempty"`
	// Batch stands for Steps once the service has stored them (StepBatch).
	Batch   *StepBatch     `json:"batch,omitempty"`
	Body    string         `json:"body,omitempty"` // report text, answer to an information request, remediation
	Notices []Notification `json:"notifications,omitempty"`
	// PolicyVersion is the authorization policy the API checked the action under.
	PolicyVersion string `json:"policy_version,omitempty"`
	// Digest is the digest of the version the person decided on, as their screen or the CLI
	// showed it. An operation that judges a version (Judges) is refused when it is not the
	// measure's current digest: nothing is recorded against a version the person did not see.
	Digest string `json:"digest,omitempty"`
	// Signature is the person's own signature over the decision's statement, as the service
	// checked it (audit.Signature's fields); the decision's record carries it.
	Signature map[string]string `json:"signature,omitempty"`
}

// judging lists the operations that judge a version, and so carry the digest judged.
var judging = []authz.Op{authz.OpLegalReview, authz.OpCommandReview, authz.OpRecordGate, authz.OpDeclareConflict,
	authz.OpVote, authz.OpRequestInfo, authz.OpPostHocDecision, authz.OpVerifyReport}

// Judges reports whether op judges a version: its action must name the digest it judges.
func Judges(op authz.Op) bool { return slices.Contains(judging, op) }

// Order is an order to the server's administrator to take the measure.
type Order struct {
	Addressee string    `json:"addressee"`
	Content   string    `json:"content"`
	Deadline  time.Time `json:"deadline"`
	Proof     string    `json:"proof_of_delivery,omitempty"`
}

// Sealed is what sealing a version fixes and the workflow needs to know of it.
type Sealed struct {
	Version               int           `json:"version"`
	Digest                string        `json:"digest"`
	Kind                  Kind          `json:"kind"`
	LegalBasis            string        `json:"legal_basis"`
	SelfExecutionFallback bool          `json:"self_execution_fallback"`
	RequestedWindow       time.Duration `json:"requested_window"`
	Urgent                bool          `json:"urgent"`
	Executors             []string      `json:"executors"`
	Foreign               bool          `json:"foreign"`
	Targets               int           `json:"targets"`
	// Technique is the approved technique; every execution step must use it.
	Technique string `json:"technique,omitempty"`
}

// Approval is the Commission's approval of one version.
type Approval struct {
	Version              int       `json:"version"`
	Digest               string    `json:"digest"`
	WindowStart          time.Time `json:"window_start"`
	WindowEnd            time.Time `json:"window_end"`
	Conditions           []string  `json:"conditions"`
	SelfExecutionAllowed bool      `json:"self_execution_allowed"`
}

// Vote is a Commission member's vote on one digest.
type Vote struct {
	Member     string   `json:"member"`
	Chair      bool     `json:"chair,omitempty"`
	Vote       string   `json:"vote"` // approve | reject | return
	Reason     string   `json:"reason,omitempty"`
	Conditions []string `json:"conditions,omitempty"`
}

// Tally is how a Commission decision was reached.
type Tally struct {
	Outcome  string `json:"outcome"` // approved | rejected | returned
	Approve  int    `json:"approve"`
	Reject   int    `json:"reject"`
	Return   int    `json:"return"`
	Eligible int    `json:"eligible"`
	Casting  bool   `json:"chair_casting_vote,omitempty"`
	Votes    []Vote `json:"votes"` // every vote, dissent included
}

// LegalRequirements are what a legal reviewer confirms before approving an
// access-and-neutralization measure (Police Duties Execution Act art. 6-2(2), as the statute's
// requirements are listed in the project's legal research): a harmful telecommunication, the
// serious harm it threatens, urgency, that the measure is one normally necessary, taken via
// telecommunication lines, and the minimum necessary.
var LegalRequirements = []string{"harmful_telecommunication", "serious_harm", "urgency", "normally_necessary",
	"via_telecommunication_lines", "minimum_necessary"}

// CheckChecklist refuses a legal review's checklist that names an unknown requirement or one
// twice, or an approval that leaves a requirement unconfirmed.
func CheckChecklist(decision string, items []string) error {
	seen := map[string]bool{}
	for i, it := range items {
		known := false
		for _, r := range LegalRequirements {
			known = known || r == it
		}
		if !known {
			return fieldErr(fmt.Sprintf("checklist[%d]", i), "is not a requirement; the requirements are %v", LegalRequirements)
		}
		if seen[it] {
			return fieldErr(fmt.Sprintf("checklist[%d]", i), "repeats %s", it)
		}
		seen[it] = true
	}
	if decision != "approve" {
		return nil
	}
	for _, r := range LegalRequirements {
		if !seen[r] {
			return fieldErr("checklist", "an approval confirms every statutory requirement; %s is not confirmed", r)
		}
	}
	return nil
}

// StepBatch stands, in the workflow, for a batch of execution steps the service stored before
// sending the action; the activity reads the steps back by their digest. Carried whole, a
// batch of MaxSteps steps is about 1.6 MB of JSON, written into the workflow's history twice
// (the Update and the activity's input) and near Temporal's 2 MB payload limit. The summary
// holds what the workflow judges (who witnessed, which technique, the earliest and latest
// time), each with the first step that shows it, so a refusal still names a step.
type StepBatch struct {
	Stored     string   `json:"stored"` // the ID of the row the service stored the steps in
	Digest     string   `json:"digest"` // audit.ContentDigest of the steps
	Count      int      `json:"count"`
	Witnesses  []Marked `json:"witnesses"`
	Techniques []Marked `json:"techniques"`
	Earliest   MarkedAt `json:"earliest"`
	Latest     MarkedAt `json:"latest"`
}

// Marked is a value found in a batch of steps, with the index of the first step holding it.
type Marked struct {
	Value string `json:"value"`
	Step  int    `json:"step"`
}

// MarkedAt is a time found in a batch of steps, with the index of the first step at it.
type MarkedAt struct {
	At   time.Time `json:"at"`
	Step int       `json:"step"`
}

// Summarise is the StepBatch of steps whose content digest is digest.
func Summarise(digest string, steps []Step) *StepBatch {
	b := &StepBatch{Digest: digest, Count: len(steps)}
	seen := map[[2]string]bool{}
	mark := func(list []Marked, kind, v string, i int) []Marked {
		if seen[[2]string{kind, v}] {
			return list
		}
		seen[[2]string{kind, v}] = true
		return append(list, Marked{Value: v, Step: i})
	}
	for i, st := range steps {
		b.Witnesses = mark(b.Witnesses, "w", st.Witness, i)
		b.Techniques = mark(b.Techniques, "t", st.Technique, i)
		if i == 0 || st.At.Before(b.Earliest.At) {
			b.Earliest = MarkedAt{At: st.At, Step: i}
		}
		if i == 0 || st.At.After(b.Latest.At) {
			b.Latest = MarkedAt{At: st.At, Step: i}
		}
	}
	return b
}

// StepCount is how many execution steps the action logs, carried whole or as a batch.
func (a *Action) StepCount() int {
	if a.Batch != nil {
		return a.Batch.Count
	}
	return len(a.Steps)
}
