package measure

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// FieldError is a refusal of outside input, naming the field by its JSON path.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

var (
	legalBases   = []string{"police_duties_act_6_2", "sdf_act_communications_protection"}
	kinds        = []Kind{OrderAdministrator, SelfExecute}
	techniques   = []string{"disable_malware", "stop_process", "block_c2", "push_uninstaller", "disable_account", "other"}
	altOutcomes  = []string{"tried", "impossible", "rejected"}
	targetKinds  = []string{"ip", "cidr", "domain", "url", "asn"}
	locations    = []string{"domestic", "abroad", "unknown"}
	roles        = []string{"", "c2", "staging", "exfil", "proxy", "botnet_node"}
	ownerships   = []string{"", "attacker_controlled", "compromised_third_party", "unknown"}
	stepResults  = []string{"success", "failure", "partial"}
	notifyStatus = []string{"sent", "deferred"}
)

// Validate checks a plan as it must be before submission. Field paths are relative to the plan.
func (p *Plan) Validate() error {
	if err := p.CheckInput(); err != nil {
		return err
	}
	if strings.TrimSpace(p.Title) == "" {
		return fieldErr("title", "is required")
	}
	if !slices.Contains(legalBases, p.LegalBasis) {
		return fieldErr("legal_basis", "must be one of %v", legalBases)
	}
	if !slices.Contains(kinds, p.Kind) {
		return fieldErr("kind", "must be one of %v", kinds)
	}
	if !slices.Contains(techniques, p.Technique) {
		return fieldErr("technique", "must be one of %v", techniques)
	}
	if len(p.Operations) == 0 {
		return fieldErr("operations", "must list at least one planned operation")
	}
	if len(p.Alternatives) == 0 {
		return fieldErr("alternatives", "must list the less intrusive means considered")
	}
	for i, a := range p.Alternatives {
		if strings.TrimSpace(a.Means) == "" {
			return fieldErr(fmt.Sprintf("alternatives[%d].means", i), "is required")
		}
		if !slices.Contains(altOutcomes, a.Outcome) {
			return fieldErr(fmt.Sprintf("alternatives[%d].outcome", i), "must be one of %v", altOutcomes)
		}
		if strings.TrimSpace(a.Reason) == "" {
			return fieldErr(fmt.Sprintf("alternatives[%d].reason", i), "is required")
		}
	}
	for _, f := range []struct{ name, value string }{
		{"necessity", p.Necessity},
		{"proportionality", p.Proportionality},
		{"collateral", p.Collateral},
		{"rollback_plan", p.RollbackPlan},
	} {
		if strings.TrimSpace(f.value) == "" {
			return fieldErr(f.name, "statement is required")
		}
	}
	if p.RequestedWindow < 0 {
		return fieldErr("requested_window", "must not be negative")
	}
	if len(p.Executors) == 0 {
		return fieldErr("executors", "must name at least one executor")
	}
	return nil
}

// Validate checks one target; field paths are relative to it.
func (t *Target) Validate() error {
	if err := checkAll(
		CheckLine("value", t.Value, MaxTargetValue),
		CheckLine("kind", t.Kind, MaxLine),
		CheckLine("location", t.Location, MaxLine),
		CheckLine("country", t.Country, MaxLine),
		CheckLine("role", t.Role, MaxLine),
		CheckLine("ownership", t.Ownership, MaxLine),
		CheckLine("hosting_provider", t.HostingProvider, MaxLine),
		CheckLine("registrar", t.Registrar, MaxLine),
		CheckLine("source", t.Source, MaxLine),
	); err != nil {
		return err
	}
	t.Value = strings.TrimSpace(t.Value)
	if !slices.Contains(targetKinds, t.Kind) {
		return fieldErr("kind", "must be one of %v", targetKinds)
	}
	if t.Value == "" {
		return fieldErr("value", "is required")
	}
	switch t.Kind {
	case "ip":
		a, err := netip.ParseAddr(t.Value)
		if err != nil || a.Zone() != "" {
			return fieldErr("value", "%q is not an IP address", t.Value)
		}
		t.Value = a.String()
	case "cidr":
		p, err := netip.ParsePrefix(t.Value)
		if err != nil {
			return fieldErr("value", "%q is not a CIDR prefix", t.Value)
		}
		if p.Masked() != p {
			return fieldErr("value", "%q has host bits set (did you mean %s?)", t.Value, p.Masked())
		}
		t.Value = p.String()
	case "domain":
		a, err := asciiDomain(t.Value)
		if err != nil {
			return fieldErr("value", "%q is not a domain name: %v", t.Value, err)
		}
		t.Value = a
		if err := checkDomain(t.Value); err != nil {
			return fieldErr("value", "%q is not a domain name: %v", t.Value, err)
		}
		t.Value = strings.ToLower(strings.TrimSuffix(t.Value, "."))
	case "url":
		u, err := url.Parse(t.Value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp") || u.Host == "" {
			return fieldErr("value", "%q is not an absolute http, https or ftp URL", t.Value)
		}
		host := u.Hostname()
		if _, err := netip.ParseAddr(host); err != nil {
			if _, err := asciiDomain(host); err != nil {
				return fieldErr("value", "%q has an invalid host: %v", t.Value, err)
			}
		}
		if !isASCII(host) {
			a, _ := asciiDomain(host)
			port := u.Port()
			u.Host, host = a, a
			if port != "" {
				u.Host = net.JoinHostPort(a, port)
			}
			t.Value = u.String()
		}
		if _, err := netip.ParseAddr(host); err != nil {
			if err := checkDomain(host); err != nil {
				return fieldErr("value", "%q has an invalid host: %v", t.Value, err)
			}
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fieldErr("value", "%q has port %s; a port is 1 to 65535", t.Value, p)
			}
		}
	case "asn":
		s := strings.TrimPrefix(strings.ToUpper(t.Value), "AS")
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return fieldErr("value", "%q is not an AS number (AS1 to AS4294967295)", t.Value)
		}
		t.Value = "AS" + strconv.FormatUint(n, 10)
	}
	if t.Port < 0 || t.Port > 65535 {
		return fieldErr("port", "must be between 0 and 65535")
	}
	if t.Location == "" {
		t.Location = "unknown"
	}
	if !slices.Contains(locations, t.Location) {
		return fieldErr("location", "must be one of %v", locations)
	}
	if !slices.Contains(roles, t.Role) {
		return fieldErr("role", "must be one of %v", roles[1:])
	}
	if t.Ownership == "" {
		t.Ownership = "unknown"
	}
	if !slices.Contains(ownerships, t.Ownership) {
		return fieldErr("ownership", "must be one of %v", ownerships[1:])
	}
	if t.Country != "" && (len(t.Country) != 2 || strings.ToUpper(t.Country) != t.Country) {
		return fieldErr("country", "must be an ISO 3166-1 alpha-2 code such as JP")
	}
	return nil
}

// ValidateTargets checks a list of targets, naming the failing one as targets[i].field.
func ValidateTargets(ts []Target) error {
	if len(ts) == 0 {
		return fieldErr("targets", "must not be empty")
	}
	for i := range ts {
		if err := ts[i].Validate(); err != nil {
			return Within(fmt.Sprintf("targets[%d]", i), err)
		}
	}
	return nil
}

// Validate checks one execution step.
func (s *Step) Validate() error {
	if err := checkAll(
		CheckLine("target", s.Target, MaxTargetValue),
		CheckLine("technique", s.Technique, MaxLine),
		CheckText("action", s.Action, MaxLine*4),
		CheckLine("result", s.Result, MaxLine),
		CheckLine("witness", s.Witness, MaxID),
	); err != nil {
		return err
	}
	if strings.TrimSpace(s.Target) == "" {
		return fieldErr("target", "is required")
	}
	s.Target = NormalValue(s.Target)
	if !slices.Contains(techniques, s.Technique) {
		return fieldErr("technique", "must be one of %v", techniques)
	}
	if strings.TrimSpace(s.Action) == "" {
		return fieldErr("action", "is required")
	}
	if !slices.Contains(stepResults, s.Result) {
		return fieldErr("result", "must be one of %v", stepResults)
	}
	if s.Witness == "" {
		return fieldErr("witness", "is required: every step is witnessed")
	}
	if s.At.IsZero() {
		return fieldErr("at", "is required")
	}
	return nil
}

// Validate checks one notification record.
func (n *Notification) Validate() error {
	if err := checkAll(
		CheckLine("addressee", n.Addressee, MaxLine),
		CheckLine("status", n.Status, MaxLine),
		CheckText("reason", n.Reason, MaxText),
	); err != nil {
		return err
	}
	if strings.TrimSpace(n.Addressee) == "" {
		return fieldErr("addressee", "is required")
	}
	if !slices.Contains(notifyStatus, n.Status) {
		return fieldErr("status", "must be one of %v", notifyStatus)
	}
	if n.Status == "deferred" && strings.TrimSpace(n.Reason) == "" {
		return fieldErr("reason", "is required when notification is deferred")
	}
	return nil
}

// errIDNA refuses a Unicode name IDNA 2008 does not allow (an emoji, a symbol, a mixed
// direction); such a name registered under older rules is given as its A-label.
var errALabel = errors.New("its xn-- label is not one a registry issues: invalid Punycode, or a hidden, control or unmapped character")

var errIDNA = errors.New("it has a character IDNA 2008 does not allow in a domain name; a name registered anyway is given as its A-label (xn--…)")

func checkDomain(s string) error {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 {
		return fmt.Errorf("length must be 1 to 253")
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return fmt.Errorf("needs at least two labels")
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return fmt.Errorf("label %q must be 1 to 63 characters", l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", l)
		}
		for _, c := range l {
			ok := c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			if !ok {
				return fmt.Errorf("label %q has character %q", l, c)
			}
		}
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return fmt.Errorf("is an IP address")
	}
	// No top-level domain is all digits (RFC 3696 section 2): 300.1.1.1 is a mistyped address.
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return fmt.Errorf("ends in the all-numeric label %q: a mistyped IP address?", tld)
	}
	return nil
}
