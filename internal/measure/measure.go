// Package measure holds the domain of a measure request (措置承認申請): its stages, the plan an
// officer drafts, its targets, and the validation of outside input into them.
//
// It has no I/O: the workflow, the activities and the API all share these types.
package measure

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Stage is where a measure request stands in its lifecycle (DESIGN section 4).
type Stage string

const (
	Draft              Stage = "DRAFT"
	LegalReview        Stage = "LEGAL_REVIEW"
	CommandReview      Stage = "COMMAND_REVIEW"
	Gates              Stage = "GATES"
	CommissionReview   Stage = "COMMISSION_REVIEW"
	InfoRequested      Stage = "INFO_REQUESTED"
	Approved           Stage = "APPROVED"
	Rejected           Stage = "REJECTED"
	OrderIssued        Stage = "ORDER_ISSUED"
	Executing          Stage = "EXECUTING"
	EmergencyExecuting Stage = "EMERGENCY_EXECUTING"
	Executed           Stage = "EXECUTED"
	CommissionNotified Stage = "COMMISSION_NOTIFIED"
	PostHocReviewed    Stage = "POST_HOC_REVIEWED"
	Reported           Stage = "REPORTED"
	Notifying          Stage = "NOTIFYING"
	Closed             Stage = "CLOSED"
	Expired            Stage = "EXPIRED"
	Withdrawn          Stage = "WITHDRAWN"
)

// Terminal reports whether no further transition can leave s.
func (s Stage) Terminal() bool {
	return s == Closed || s == Rejected || s == Expired || s == Withdrawn
}

// PreExecution reports whether a measure in s may still be withdrawn.
func (s Stage) PreExecution() bool {
	switch s {
	case Draft, LegalReview, CommandReview, Gates, CommissionReview, InfoRequested, Approved, OrderIssued:
		return true
	}
	return false
}

// Kind is how the measure is carried out.
type Kind string

const (
	OrderAdministrator Kind = "order_administrator"
	SelfExecute        Kind = "self_execute"
)

// Plan is the body of a measure request that the officer drafts; targets and evidence are kept
// apart because there may be hundreds of thousands of them.
type Plan struct {
	Title      string   `json:"title"`
	LegalBasis string   `json:"legal_basis"` // police_duties_act_6_2 | sdf_act_communications_protection
	Kind       Kind     `json:"kind"`
	Technique  string   `json:"technique"` // disable_malware | stop_process | block_c2 | push_uninstaller | disable_account | other
	Operations []string `json:"operations"`
	// SelfExecutionFallback: if the administrator does not comply with an order, the agency may
	// execute itself (only meaningful when Kind is order_administrator).
	SelfExecutionFallback bool           `json:"self_execution_fallback,omitempty"`
	RequestedWindow       Duration       `json:"requested_window,omitempty"`
	Executors             []string       `json:"executors"` // user IDs named for execution
	RollbackPlan          string         `json:"rollback_plan"`
	DataHandling          string         `json:"data_handling"`
	Alternatives          []Alternative  `json:"alternatives"`
	Necessity             string         `json:"necessity"`
	Proportionality       string         `json:"proportionality"`
	Collateral            string         `json:"collateral"`
	NotificationPlan      string         `json:"notification_plan"`
	EmergencyJustify      string         `json:"emergency_justification,omitempty"`
	Urgent                bool           `json:"urgent,omitempty"`
	Extra                 map[string]any `json:"extra,omitempty"`
}

// Alternative is a less intrusive means the officer considered.
type Alternative struct {
	Means   string `json:"means"`
	Outcome string `json:"outcome"` // tried | impossible | rejected
	Reason  string `json:"reason"`
}

// Target is one piece of attacker infrastructure the measure acts on.
type Target struct {
	Kind            string `json:"kind"` // ip | cidr | domain | url | asn
	Value           string `json:"value"`
	Port            int    `json:"port,omitempty"`
	Location        string `json:"location"` // domestic | abroad | unknown
	Country         string `json:"country,omitempty"`
	Role            string `json:"role,omitempty"`      // c2 | staging | exfil | proxy | botnet_node
	Ownership       string `json:"ownership,omitempty"` // attacker_controlled | compromised_third_party | unknown
	HostingProvider string `json:"hosting_provider,omitempty"`
	Registrar       string `json:"registrar,omitempty"`
	// Source names where an imported target came from: "stix:indicator--…" or
	// "misp:<attribute uuid>". The digest covers it, so reviewers judge the provenance too.
	Source string `json:"source,omitempty"`
}

// Foreign reports whether the target needs the foreign-target safeguards (an NPA executor and
// a Foreign Minister consultation): abroad, or of unknown location.
func (t Target) Foreign() bool { return t.Location != "domestic" }

// Step is one logged execution step.
type Step struct {
	Target    string    `json:"target"`
	Technique string    `json:"technique"`
	Action    string    `json:"action"`
	Result    string    `json:"result"` // success | failure | partial
	Witness   string    `json:"witness"`
	At        time.Time `json:"at"`
}

// Notification records telling an affected administrator or owner, or deferring it.
type Notification struct {
	Addressee string `json:"addressee"`
	Status    string `json:"status"` // sent | deferred
	Reason    string `json:"reason,omitempty"`
}

// Duration is a time.Duration written in JSON as Go duration text ("336h").
type Duration time.Duration

// MarshalJSON writes d as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads duration text: Go's ("336h", "90m") or days, alone or before Go's
// ("14d", "1d12h").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is text such as \"336h\" or \"14d\": %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads a length of time as people write it: 14d, 72h, 1d12h, or Go's form.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a duration such as 14d, 72h or 1d12h", Clip(s, 40))
	days := time.Duration(0)
	if n, rest, ok := strings.Cut(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 || v > 3660 {
			return 0, bad
		}
		days, s = time.Duration(v)*24*time.Hour, rest
		if s == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, bad
	}
	return days + v, nil
}
