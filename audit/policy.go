package audit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// Policy is what an auditor trusts: the log's key, the witnesses whose cosignatures a
// checkpoint needs, and the settings the rules' replay checks.
//
// The log and witness lines are the C2SP/Sigsum policy format (`log`, `witness`, `group`,
// `quorum`), read by filippo.io/torchwood's parser, so the same lines serve other tools; the
// replay's settings are lines of their own that those tools never see.
type Policy struct {
	Origin string
	// LogKey is the log's note verifier key (audit.vkey). LogKeys holds every key the policy
	// accepts, each alone (during a rotation, the old and the new); LogKey is the first.
	LogKey  string
	LogKeys []string
	// Witnesses are the policy's witnesses by name, with their cosignature/v1 verifier keys.
	Witnesses []PolicyWitness
	// Quorum names the witness or group that must cosign a checkpoint; "none" trusts the
	// log's own signature alone, as does "" in a policy built in code (ParsePolicy requires
	// the line).
	Quorum string
	// EmergencyNotification is the longest allowed time from an emergency declaration to the
	// Commission's notification.
	EmergencyNotification time.Duration
	// QuorumMembers is how many members besides the chair must vote; CommissionSize how many vote.
	QuorumMembers, CommissionSize int
	// Strict also checks that every record is in RFC 8785 canonical form.
	Strict bool

	// cosigning holds, for each log key, torchwood's policy: that key's signature, the
	// origin it names, and the witness quorum.
	cosigning []torchwood.Policy
}

// PolicyWitness is one `witness NAME VKEY [URL]` line.
type PolicyWitness struct {
	Name, VKey, URL string
}

// ParsePolicy reads a policy file. The C2SP lines:
//
//	log VKEY [URL]                    the log's verifier key; several: any one of them (a rotation)
//	witness NAME VKEY [URL]           a witness's cosignature/v1 verifier key
//	group NAME K|any|all MEMBER...    K of the named witnesses or groups
//	quorum NAME|none                  which witness or group must cosign every checkpoint
//
// and the replay's settings: "origin NAME", "emergency-notification 24h", "quorum-members 2",
// "commission-size 5", "strict". # starts a comment.
func ParsePolicy(text string) (Policy, error) {
	p := Policy{EmergencyNotification: 24 * time.Hour, QuorumMembers: 2, CommissionSize: 5}
	var shared []string // witness, group and quorum lines, given to torchwood with each log line
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		key, val := fields[0], strings.Join(fields[1:], " ")
		var err error
		switch key {
		case "log":
			if len(fields) < 2 {
				err = errors.New("write `log <verifier key>`")
				break
			}
			if _, err = note.NewVerifier(fields[1]); err == nil {
				if p.LogKey == "" {
					p.LogKey = fields[1]
				}
				p.LogKeys = append(p.LogKeys, fields[1])
			}
		case "witness":
			if len(fields) == 2 {
				err = errors.New("write `witness NAME VKEY [URL]` (the C2SP policy format), then `quorum NAME`")
				break
			}
			if len(fields) >= 3 {
				w := PolicyWitness{Name: fields[1], VKey: fields[2]}
				if len(fields) > 3 {
					w.URL = fields[3]
				}
				p.Witnesses = append(p.Witnesses, w)
			}
			shared = append(shared, line)
		case "group":
			shared = append(shared, line)
		case "quorum":
			if len(fields) >= 2 {
				p.Quorum = fields[1]
			}
			shared = append(shared, line)
		case "witnesses":
			err = errors.New("`witnesses K` is replaced by the C2SP policy's `group NAME K W1 W2 …` and `quorum NAME`")
		case "origin":
			p.Origin = val
		case "emergency-notification":
			p.EmergencyNotification, err = time.ParseDuration(val)
		case "quorum-members":
			p.QuorumMembers, err = strconv.Atoi(val)
		case "commission-size":
			p.CommissionSize, err = strconv.Atoi(val)
		case "strict":
			p.Strict = val == "" || val == "true"
		default:
			err = fmt.Errorf("unknown setting %q", key)
		}
		if err != nil {
			return p, fmt.Errorf("policy line %d: %w", i+1, err)
		}
	}
	if p.LogKey == "" {
		return p, errors.New("policy: no `log <verifier key>` line")
	}
	if p.Quorum == "" {
		return p, errors.New("policy: no `quorum` line: name the witness or group that must cosign every checkpoint, or write `quorum none` to trust the log's signature alone")
	}
	// torchwood requires every `log` line of one policy to sign; a rotation's keys sign in
	// turn, so each key gets a policy of its own with the same witnesses.
	for _, k := range p.LogKeys {
		cp, err := torchwood.ParsePolicy([]byte("log " + k + "\n" + strings.Join(shared, "\n") + "\n"))
		if err != nil {
			return p, fmt.Errorf("policy: %w", err)
		}
		p.cosigning = append(p.cosigning, cp)
	}
	if p.Origin == "" {
		p.Origin, _, _ = strings.Cut(p.LogKey, "+")
	}
	return p, nil
}

// cosigned checks a signed checkpoint against the policy's witness quorum (nil when met, or
// when the quorum is "none"). The log's own signature is checked apart, by verifiers.
func (p Policy) cosigned(signed []byte, origin string) error {
	if p.Quorum == "none" || p.Quorum == "" {
		return nil
	}
	var last error
	for _, cp := range p.cosigning {
		n, err := note.Open(signed, cp)
		if err == nil {
			if err = cp.Check(origin, n.Sigs); err == nil {
				return nil
			}
		}
		last = err
	}
	var by []string
	for _, w := range p.Witnesses {
		if v, err := torchwood.NewCosignatureVerifier(w.VKey); err == nil {
			if _, err := note.Open(signed, note.VerifierList(v)); err == nil {
				by = append(by, w.Name)
			}
		}
	}
	who := "none of the policy's witnesses"
	if len(by) > 0 {
		who = strings.Join(by, ", ")
	}
	return fmt.Errorf("quorum %q not met: cosigned by %s (%v)", p.Quorum, who, last)
}

// verifiers returns the note verifiers of every log key the policy accepts.
func (p Policy) verifiers() (note.Verifiers, error) {
	keys := p.LogKeys
	if len(keys) == 0 {
		keys = []string{p.LogKey}
	}
	var vs []note.Verifier
	for _, k := range keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("policy log key: %w", err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// AuditorPolicy writes the policy file an auditor starts from: the log's keys, and every
// witness the log asks, all of whom must cosign (quorum none when there are none).
func AuditorPolicy(logKeys, witnessKeys []string) string {
	var b strings.Builder
	for _, k := range logKeys {
		b.WriteString("log " + k + "\n")
	}
	var names []string
	for _, k := range witnessKeys {
		name, _, _ := strings.Cut(k, "+")
		fmt.Fprintf(&b, "witness %s %s\n", name, k)
		names = append(names, name)
	}
	switch len(names) {
	case 0:
		b.WriteString("quorum none\n")
	case 1:
		b.WriteString("quorum " + names[0] + "\n")
	default:
		b.WriteString("group witnesses all " + strings.Join(names, " ") + "\nquorum witnesses\n")
	}
	return b.String()
}
