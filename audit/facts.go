package audit

import (
	"bytes"
	"strconv"
)

// facts are what the rules replay reads from a record's details. Both decoders fill them with
// the same leniency: a value of another JSON type than expected counts as absent, and lists
// keep their strings only.
type facts struct {
	Digest       string
	Executors    []string
	TargetValues []string
	Conflicted   bool
	Vote         string
	Outcome      string // tally.outcome
	Approval     struct{ Digest, WindowStart, WindowEnd string }
	Targets      []string
	Steps        []step
	NewVersion   int
	// Of a seal: what the gates and deadlines depend on. Deadlines are the measure's own
	// (the workflow's configuration when it started), in milliseconds by name.
	Foreign    bool
	LegalBasis string
	Urgent     bool
	Requested  int64 // requested window, milliseconds
	Deadlines  map[string]int64
	Gate       string // of record_gate
	OrderDue   string // of issue_order: order.deadline
	// Of policy and designation records.
	PolicyName  string // details.version: "v2"
	RuleSet     []string
	Designation string
	User        string
	Scope       string
	ValidFrom   string
	ValidUntil  string
	// Of a restart (RestartAction): the previous origin's newest signed checkpoint, and the
	// largest size a witness had cosigned under it.
	Previous  string
	Witnessed int64
	// Of a personally signed decision (read only by encoding/json: a record holding a
	// signature leaves the fast path), what its statement says and the signature.
	Decision, Body, Remediation, Reference string
	Conditions, Checklist                  []string
	Signed                                 *Signature
	// Of a key's record.
	Key        Key
	ProposedBy string
	// Of an account change's proposal and approval: the change's ID, its kind (details.kind of
	// a proposal), the role granted or revoked; of a signed approval, the account made.
	Change, ChangeKind, Role, Username, Org string
	// Of a signed log_steps record: its inline step list's ContentDigest; of a signed
	// issue_order, its order's.
	ContentDigest, OrderDigest string
	// Companions are the details moved to companion data, by name: "sha256:<hex>" of the
	// value. The verifier reads them back from the archive (resolve).
	Companions map[string]string
}

// step is one execution step of a log_steps record.
type step struct{ Witness, At string }

// factsOf reads facts from details decoded by encoding/json.
func factsOf(d map[string]any) facts {
	f := facts{Digest: str(d, "digest"), Executors: strs(d, "executors"), TargetValues: strs(d, "target_values"),
		Conflicted: d["conflicted"] == true, Vote: str(d, "vote"), Targets: strs(d, "targets"), NewVersion: num(d, "new_version")}
	tally, _ := d["tally"].(map[string]any)
	f.Outcome = str(tally, "outcome")
	ap, _ := d["approval"].(map[string]any)
	f.Approval.Digest, f.Approval.WindowStart, f.Approval.WindowEnd = str(ap, "digest"), str(ap, "window_start"), str(ap, "window_end")
	f.Steps = stepsOf(d["step_list"])
	f.Foreign, f.Urgent = d["foreign"] == true, d["urgent"] == true
	f.LegalBasis, f.Gate, f.PolicyName, f.RuleSet = str(d, "legal_basis"), str(d, "gate"), str(d, "version"), strs(d, "rule_set")
	f.Requested = int64(num(d, "requested_window_ms"))
	order, _ := d["order"].(map[string]any)
	f.OrderDue = str(order, "deadline")
	f.Designation, f.User, f.Scope, f.Change = str(d, "designation"), str(d, "user"), str(d, "scope"), str(d, "change")
	f.Role, f.ChangeKind = str(d, "role"), str(d, "kind")
	f.ValidFrom, f.ValidUntil = str(d, "valid_from"), str(d, "valid_until")
	f.Previous, f.Witnessed = str(d, "previous_checkpoint"), int64(num(d, "witnessed_size"))
	_, signed := d["signature"]
	_, key := d["key"]
	_, pub := d["public_key"]
	if signed || key || pub { // what the fast path leaves to encoding/json
		f.Decision, f.Body, f.Remediation, f.Reference = str(d, "decision"), str(d, "body"), str(d, "remediation"), str(d, "reference")
		f.Conditions, f.Checklist = strs(d, "conditions"), strs(d, "checklist")
		if sig, ok := d["signature"].(map[string]any); ok {
			f.Signed = &Signature{Kind: str(sig, "kind"), Key: str(sig, "key"), Time: str(sig, "time"), AuthenticatorData: str(sig, "authenticator_data"),
				ClientDataJSON: str(sig, "client_data_json"), Assertion: str(sig, "signature"), SSHSig: str(sig, "sshsig")}
		}
		f.Key = Key{ID: str(d, "key"), User: str(d, "user"), Kind: str(d, "kind"), PublicKey: str(d, "public_key"),
			CredentialID: str(d, "credential_id"), RPID: str(d, "rp_id"), Origin: str(d, "origin")}
		f.ProposedBy = str(d, "proposed_by")
		f.Username, f.Org = str(d, "username"), str(d, "org")
		if list, ok := d["step_list"]; ok && signed {
			f.ContentDigest, _ = ContentDigest(list)
		}
		if o, ok := d["order"]; ok && signed {
			f.OrderDigest, _ = ContentDigest(o)
		}
	}
	if dl, ok := d["deadlines"].(map[string]any); ok {
		for k := range dl {
			if v, ok := dl[k].(float64); ok {
				if f.Deadlines == nil {
					f.Deadlines = map[string]int64{}
				}
				f.Deadlines[k] = int64(v)
			}
		}
	}
	moved, _ := d[Companions].(map[string]any)
	for k, v := range moved {
		if s, ok := v.(string); ok && s != "" {
			if f.Companions == nil {
				f.Companions = map[string]string{}
			}
			f.Companions[k] = s
		}
	}
	return f
}

// stepsOf reads a step list decoded by encoding/json.
func stepsOf(v any) []step {
	var out []step
	list, _ := v.([]any)
	for _, s := range list {
		m, _ := s.(map[string]any)
		out = append(out, step{Witness: str(m, "witness"), At: str(m, "at")})
	}
	return out
}

func str(d map[string]any, k string) string { s, _ := d[k].(string); return s }

func num(d map[string]any, k string) int { f, _ := d[k].(float64); return int(f) }

func strs(d map[string]any, k string) []string {
	var out []string
	list, _ := d[k].([]any)
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// facts reads a details object in canonical form straight into f, skipping what the replay
// does not read. Like record, it reports false on anything it is unsure of: a key out of
// order, whitespace, a list holding other than strings, a step that is not an object.
func (d *decoder) facts(f *facts) bool {
	return d.fields(func(key []byte) bool {
		switch string(key) {
		case "digest":
			return d.optString(&f.Digest, true)
		case "signature", "public_key", "key":
			return false // a signed decision or a key's record: encoding/json reads all of it
		case Companions:
			if !d.peek('{') {
				return d.skip(1)
			}
			return d.fields(func(k []byte) bool {
				var ref string
				if !d.optString(&ref, false) {
					return false
				}
				if ref != "" {
					if f.Companions == nil {
						f.Companions = map[string]string{}
					}
					f.Companions[string(k)] = ref
				}
				return true
			})
		case "executors":
			return d.optStrings(&f.Executors)
		case "foreign":
			f.Foreign = d.literal("true")
			return f.Foreign || d.skip(1)
		case "urgent":
			f.Urgent = d.literal("true")
			return f.Urgent || d.skip(1)
		case "legal_basis":
			return d.optString(&f.LegalBasis, true)
		case "gate":
			return d.optString(&f.Gate, true)
		case "order":
			if !d.peek('{') {
				return d.skip(1)
			}
			return d.fields(func(k []byte) bool {
				if string(k) == "deadline" {
					return d.optString(&f.OrderDue, false)
				}
				return d.skip(2)
			})
		case "version":
			return d.optString(&f.PolicyName, true)
		case "rule_set":
			return d.optStrings(&f.RuleSet)
		case "designation":
			return d.optString(&f.Designation, true)
		case "change":
			return d.optString(&f.Change, false)
		case "role":
			return d.optString(&f.Role, true)
		case "kind":
			return d.optString(&f.ChangeKind, true)
		case "user":
			return d.optString(&f.User, true)
		case "scope":
			return d.optString(&f.Scope, true)
		case "valid_from":
			return d.optString(&f.ValidFrom, false)
		case "valid_until":
			return d.optString(&f.ValidUntil, false)
		case "previous_checkpoint":
			return d.optString(&f.Previous, false)
		case "witnessed_size":
			if d.peekNumber() {
				n, ok := d.number()
				f.Witnessed = int64(n)
				return ok
			}
			return d.skip(1)
		case "requested_window_ms":
			if d.peekNumber() {
				n, ok := d.number()
				f.Requested = int64(n)
				return ok
			}
			return d.skip(1)
		case "deadlines":
			if !d.peek('{') {
				return d.skip(1)
			}
			return d.fields(func(k []byte) bool {
				if !d.peekNumber() {
					return d.skip(2)
				}
				n, ok := d.number()
				if f.Deadlines == nil {
					f.Deadlines = map[string]int64{}
				}
				f.Deadlines[string(k)] = int64(n)
				return ok
			})
		case "target_values":
			return d.optStrings(&f.TargetValues)
		case "targets":
			return d.optStrings(&f.Targets)
		case "conflicted":
			f.Conflicted = d.literal("true")
			return f.Conflicted || d.skip(1)
		case "vote":
			return d.optString(&f.Vote, true)
		case "new_version":
			if d.peekNumber() {
				n, ok := d.number()
				f.NewVersion = int(n)
				return ok
			}
			return d.skip(1)
		case "tally":
			if !d.peek('{') {
				return d.skip(1)
			}
			return d.fields(func(k []byte) bool {
				if string(k) == "outcome" {
					return d.optString(&f.Outcome, true)
				}
				return d.skip(2)
			})
		case "approval":
			if !d.peek('{') {
				return d.skip(1)
			}
			return d.fields(func(k []byte) bool {
				switch string(k) {
				case "digest":
					return d.optString(&f.Approval.Digest, true)
				case "window_start":
					return d.optString(&f.Approval.WindowStart, false)
				case "window_end":
					return d.optString(&f.Approval.WindowEnd, false)
				}
				return d.skip(2)
			})
		case "step_list":
			return d.stepList(&f.Steps)
		}
		return d.skip(1)
	})
}

// fields reads an object whose keys are plain strings in increasing order (so none repeats),
// calling field for each key with the decoder at its value. The objects it reads are the
// record's own, at most three deep; what nests deeper is skipped, under skip's depth limit.
func (d *decoder) fields(field func(key []byte) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var prev []byte
	for {
		key, ok := d.plain()
		if !ok || (prev != nil && string(key) <= string(prev)) || !d.next(':') {
			return false
		}
		prev = key
		if !field(key) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

func (d *decoder) peek(c byte) bool { return d.i < len(d.b) && d.b[d.i] == c }

func (d *decoder) peekNumber() bool {
	return d.i < len(d.b) && (d.b[d.i] == '-' || (d.b[d.i] >= '0' && d.b[d.i] <= '9'))
}

// optString reads a string into s, or skips a value of another type, leaving s empty.
// Values that repeat across records are interned.
func (d *decoder) optString(s *string, intern bool) bool {
	if !d.peek('"') {
		*s = ""
		return d.skip(1)
	}
	v, ok := d.text(intern)
	*s = v
	return ok
}

// number reads a JSON number as encoding/json reads it into an any.
func (d *decoder) number() (float64, bool) {
	start := d.i
	if !d.skipNumber() {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
	return f, err == nil
}

// stepList reads a list of steps into l, or skips a value of another type, leaving l nil.
func (d *decoder) stepList(l *[]step) bool {
	return readList(d, l, 3, func() (s step, ok bool) { // three fields a step: hint/3 of them
		ok = d.fields(func(k []byte) bool {
			switch string(k) {
			case "witness":
				return d.optString(&s.Witness, true)
			case "at":
				return d.optString(&s.At, false)
			}
			return d.skip(3)
		})
		return s, ok
	})
}

// readList reads a JSON list into l, one item at a time, or skips a value of another type,
// leaving l nil. While a companion is read its size hint, over per (the commas in an item),
// sizes l once.
func readList[T any](d *decoder, l *[]T, per int, item func() (T, bool)) bool {
	*l = nil
	if !d.peek('[') {
		return d.skip(1)
	}
	d.i++
	if d.next(']') {
		return true
	}
	if d.hint > 0 {
		*l = make([]T, 0, d.hint/per)
	}
	for {
		x, ok := item()
		if !ok {
			return false
		}
		*l = append(*l, x)
		if d.next(']') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// companion reads the canonical JSON of one moved detail into f, as the details object
// {name: value} would be read. It reports false when the fast path is unsure, for
// encoding/json to decide.
func (d *decoder) companion(name string, data []byte, f *facts) bool {
	saved, at := d.b, d.i
	defer func() { d.b, d.i, d.once, d.hint = saved, at, "", 0 }()
	d.b, d.i = data, 0
	// The hint sizes the list once; bounded, as a hostile file may hold commas in one string.
	d.once, d.hint = string(data), min(bytes.Count(data, []byte{','})+1, 1<<21)
	var ok bool
	switch name {
	case "target_values":
		ok = d.optStrings(&f.TargetValues)
	case "targets":
		ok = d.optStrings(&f.Targets)
	case "step_list":
		ok = d.stepList(&f.Steps)
	case "rule_set":
		ok = d.optStrings(&f.RuleSet)
	}
	return ok && d.i == len(data)
}

// optStrings reads a list of strings into l, or skips a value of another type, leaving l nil.
// A list holding anything but strings is left to encoding/json.
func (d *decoder) optStrings(l *[]string) bool {
	return readList(d, l, 1, func() (string, bool) {
		if !d.peek('"') {
			return "", false
		}
		return d.interned()
	})
}
