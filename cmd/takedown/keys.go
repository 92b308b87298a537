package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/measure"
)

// sshSigner signs statements with one SSH key: through ssh-agent when it holds the key,
// else with ssh-keygen -Y sign and the private key file beside the public one.
type sshSigner struct {
	pub     ssh.PublicKey
	line    string // as a key's public_key spells it
	private string // the private key file, for ssh-keygen
}

// newSSHSigner reads the key at path: a public key file (id_ed25519.pub) or the private
// key file beside one.
func newSSHSigner(path string) (*sshSigner, error) {
	pubPath, private := path, strings.TrimSuffix(path, ".pub")
	if !strings.HasSuffix(path, ".pub") {
		pubPath = path + ".pub"
	}
	raw, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, fmt.Errorf("read the public key: %w", err)
	}
	line, err := audit.ParseSSHKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s %w", pubPath, err)
	}
	pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(line))
	return &sshSigner{pub: pub, line: line, private: private}, nil
}

// id is the key's ID as the server names it.
func (s *sshSigner) id() string { return audit.KeyID(audit.KeySSH, s.line) }

// sign returns an armored SSHSIG over message in the decision namespace.
func (s *sshSigner) sign(message []byte) (string, error) {
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			defer conn.Close()
			ag := agent.NewClient(conn)
			keys, _ := ag.List()
			for _, k := range keys {
				if !bytes.Equal(k.Marshal(), s.pub.Marshal()) {
					continue
				}
				var flags agent.SignatureFlags
				if s.pub.Type() == ssh.KeyAlgoRSA {
					flags = agent.SignatureFlagRsaSha512
				}
				sig, err := ag.SignWithFlags(s.pub, audit.SSHSignedData(message), flags)
				if err != nil {
					return "", fmt.Errorf("ssh-agent refused to sign: %w", err)
				}
				return audit.ArmorSSHSig(s.pub, sig), nil
			}
		}
	}
	if _, err := os.Stat(s.private); err != nil {
		return "", fmt.Errorf("ssh-agent does not hold the key and there is no private key file %s", s.private)
	}
	cmd := exec.Command("ssh-keygen", "-Y", "sign", "-q", "-f", s.private, "-n", audit.SSHNamespace)
	cmd.Stdin = bytes.NewReader(message)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ssh-keygen -Y sign: %w", err)
	}
	return string(out), nil
}

// signDecision asks the server for the statement of the decision in, checks that it states
// what the person asked for, shows it, and adds the person's signature to in.
func (e *env) signDecision(cl *client.Client, measureID, op, keyPath string, in map[string]any) error {
	s, err := newSSHSigner(keyPath)
	if err != nil {
		return err
	}
	var view struct {
		Statement, Time string
	}
	if err := cl.Do(e.ctx, "POST", "/api/v1/measures/"+url.PathEscape(measureID)+"/statements/"+url.PathEscape(op), in, &view); err != nil {
		return err
	}
	// The server words the statement; the CLI signs only what it would have written itself.
	var got struct {
		Person  string `json:"person"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal([]byte(view.Statement), &got); err != nil {
		return fmt.Errorf("the server's statement is not JSON: %w", err)
	}
	t, err := statementTime(view.Time)
	if err != nil {
		return err
	}
	var d audit.Decided
	raw, _ := json.Marshal(in)
	var input struct {
		Decision   string   `json:"decision"`
		Reason     string   `json:"reason"`
		Body       string   `json:"body"`
		Gate       string   `json:"gate"`
		Reference  string   `json:"reference"`
		Conflicted *bool    `json:"conflicted"`
		Conditions []string `json:"conditions"`
		Checklist  []string `json:"checklist"`
		Digest     string   `json:"digest"`
	}
	_ = json.Unmarshal(raw, &input)
	d = audit.Decided{Decision: input.Decision, Reason: input.Reason, Body: input.Body, Gate: input.Gate, Reference: input.Reference,
		Conditions: input.Conditions, Checklist: input.Checklist, Conflicted: input.Conflicted != nil && *input.Conflicted}
	// Steps and an order as the server reads them (times in Go's RFC 3339 spelling), named by
	// hash.
	var content struct {
		Steps []measure.Step `json:"steps"`
		Order *measure.Order `json:"order"`
	}
	if err := json.Unmarshal(raw, &content); err != nil {
		return fmt.Errorf("read what to sign: %w", err)
	}
	switch op {
	case "log_steps":
		d.Body, err = audit.ContentDigest(content.Steps)
	case "issue_order":
		d.Body, err = audit.ContentDigest(content.Order)
	}
	if err != nil {
		return err
	}
	want := audit.DecisionStatement(got.Person, measureID, got.Version, input.Digest, op, d, t)
	if string(want.Bytes()) != view.Statement {
		return fmt.Errorf("the server's statement is not the decision you gave; nothing was signed:\n  server: %s\n  yours:  %s", view.Statement, want.Bytes())
	}
	// The words are the CLI's own, of the statement it signs: the server's are not read.
	fmt.Fprintf(os.Stderr, "signing with %s (%s):\n  %s\n  sha256 %x\n", s.id(), s.pub.Type(), want.Words(), want.Hash())
	armored, err := s.sign([]byte(view.Statement))
	if err != nil {
		return err
	}
	in["signature"] = map[string]string{"kind": audit.KeySSH, "key": s.id(), "time": view.Time, "sshsig": armored}
	return nil
}

func keyAdd(e *env) error {
	path := e.fs.String("ssh", "", "the SSH public key file to register (e.g. ~/.ssh/id_ed25519.pub); its private half signs the proof")
	label := e.fs.String("label", "", "a name for the key (one line)")
	if err := e.parse(); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("key add needs -ssh FILE (passkeys are registered on the web page: My keys)")
	}
	s, err := newSSHSigner(*path)
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	var me struct {
		ID string `json:"id"`
	}
	if err := cl.Do(e.ctx, "GET", "/api/v1/me", nil, &me); err != nil {
		return err
	}
	t := time.Now().UTC().Truncate(time.Second)
	st := audit.Statement{Person: me.ID, Op: audit.OpRegisterKey, Digest: s.id(), Time: t}
	armored, err := s.sign(st.Bytes())
	if err != nil {
		return err
	}
	body := map[string]any{"kind": audit.KeySSH, "public_key": s.line, "label": *label,
		"proof": map[string]string{"kind": audit.KeySSH, "key": s.id(), "time": t.Format(time.RFC3339), "sshsig": armored}}
	var k map[string]any
	if err := cl.Do(e.ctx, "POST", "/api/v1/keys", body, &k); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s proposed (%s); an administrator other than you approves it with `takedown key approve %s`\n", k["id"], k["state"], k["id"])
	return nil
}

func keyList(e *env) error {
	user := e.fs.String("user", "", "whose keys (administrators); default yours")
	pending := e.fs.Bool("pending", false, "the keys waiting for an administrator (administrators)")
	if err := e.parse(); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	path := "/api/v1/keys"
	switch {
	case *pending:
		path += "?user="
	case *user != "":
		path += "?user=" + url.QueryEscape(*user)
	}
	var out struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := cl.Do(e.ctx, "GET", path, nil, &out); err != nil {
		return err
	}
	for _, k := range out.Keys {
		label, _ := k["label"].(string) // a passkey registered without one has none
		fmt.Fprintf(e.out, "%s\t%s\t%s\t%s\t%s\n", k["id"], k["username"], k["kind"], k["state"], label)
	}
	return nil
}

// signApproval signs an administrator's approval of subject. The CLI words the statement
// itself, from what the server lists of the proposal (a key's ID checked against its public
// key's hash), prints that and signs that: a server statement that says anything else is
// refused, so nothing is signed that was not shown.
func (e *env) signApproval(cl *client.Client, path, keyPath, op, subject string) (map[string]any, error) {
	if keyPath == "" {
		return nil, nil
	}
	s, err := newSSHSigner(keyPath)
	if err != nil {
		return nil, err
	}
	var me struct {
		ID string `json:"id"`
	}
	if err := cl.Do(e.ctx, "GET", "/api/v1/me", nil, &me); err != nil {
		return nil, err
	}
	digest, body, err := e.approvalSubject(cl, op, subject)
	if err != nil {
		return nil, err
	}
	var view struct {
		Statement, Time string
	}
	if err := cl.Do(e.ctx, "POST", path+"/statement", nil, &view); err != nil {
		return nil, err
	}
	t, err := statementTime(view.Time)
	if err != nil {
		return nil, err
	}
	st := audit.ApprovalStatement(me.ID, op, digest, body, t)
	if string(st.Bytes()) != view.Statement {
		return nil, fmt.Errorf("the server's statement is not the approval of what it lists; nothing was signed:\n  server: %s\n  listed: %s", view.Statement, st.Bytes())
	}
	fmt.Fprintf(os.Stderr, "signing with %s (%s):\n  %s\n  sha256 %x\n", s.id(), s.pub.Type(), st.Words(), st.Hash())
	armored, err := s.sign(st.Bytes())
	if err != nil {
		return nil, err
	}
	return map[string]any{"signature": map[string]string{"kind": audit.KeySSH, "key": s.id(), "time": view.Time, "sshsig": armored}}, nil
}

// statementTime reads the time the server put in a statement, refusing one far from this
// machine's clock: a statement dated ahead could be held and sent later in the person's name.
func statementTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, fmt.Errorf("the server's statement time %q: %w", v, err)
	}
	if d := time.Since(t); d > audit.StatementMaxSkew || d < -audit.StatementMaxSkew {
		return t, fmt.Errorf("the server dates the statement %s, %s from this machine's clock (more than %s); nothing was signed: check both clocks",
			v, d.Round(time.Second).Abs(), audit.StatementMaxSkew)
	}
	return t, nil
}

// approvalSubject reads the proposal an approval names from the server's lists of those
// waiting, and returns what its statement says of it: the digest and the body.
func (e *env) approvalSubject(cl *client.Client, op, subject string) (digest, body string, err error) {
	switch op {
	case audit.OpApproveKey:
		var out struct {
			Keys []struct {
				ID, User, Kind, State string
				PublicKey             string `json:"public_key"`
			}
		}
		if err := cl.Do(e.ctx, "GET", "/api/v1/keys?user=", nil, &out); err != nil {
			return "", "", err
		}
		for _, k := range out.Keys {
			if k.ID == subject && k.State == "pending" {
				if audit.KeyID(k.Kind, k.PublicKey) != k.ID {
					return "", "", fmt.Errorf("key %s as the server lists it is not named by its public key's hash; nothing was signed", k.ID)
				}
				return k.ID, k.User, nil
			}
		}
		return "", "", fmt.Errorf("no key %s waits for approval", subject)
	case audit.OpApproveRoleChange:
		var out struct {
			Changes []struct {
				ID, Kind, User, Role, Scope, Designation string
				Account                                  *struct {
					OrgID    string `json:"org_id"`
					OrgKind  string `json:"org_kind"`
					Username string
				}
				ValidFrom  *time.Time `json:"valid_from"`
				ValidUntil *time.Time `json:"valid_until"`
			}
		}
		if err := cl.Do(e.ctx, "GET", "/api/v1/admin/role-changes", nil, &out); err != nil {
			return "", "", err
		}
		for _, c := range out.Changes {
			if c.ID != subject {
				continue
			}
			ch := audit.Change{Kind: c.Kind, User: c.User, Role: c.Role, Scope: c.Scope, Designation: c.Designation}
			if c.Account != nil {
				ch.Username, ch.Org, ch.OrgKind = c.Account.Username, c.Account.OrgID, c.Account.OrgKind
			}
			if c.ValidFrom != nil && c.ValidUntil != nil {
				ch.ValidFrom, ch.ValidUntil = c.ValidFrom.UTC().Format(time.RFC3339Nano), c.ValidUntil.UTC().Format(time.RFC3339Nano)
			}
			return c.ID, ch.Body(), nil
		}
		return "", "", fmt.Errorf("no account change %s waits for approval", subject)
	default: // approve_policy
		var out struct {
			Proposals []struct {
				Version string
				Rules   []authz.Rule
			}
		}
		if err := cl.Do(e.ctx, "GET", "/api/v1/admin/policy/proposals", nil, &out); err != nil {
			return "", "", err
		}
		for _, p := range out.Proposals {
			if p.Version == subject {
				lines := make([]string, len(p.Rules))
				for i, r := range p.Rules {
					lines[i] = r.Effect + " " + string(r.Role) + " " + r.Op
				}
				return audit.RuleSetDigest(lines), p.Version, nil
			}
		}
		return "", "", fmt.Errorf("no policy %s waits for approval", subject)
	}
}

func keyApprove(e *env) error {
	sign := e.fs.String("sign", "", "sign the approval with your registered SSH key (its .pub file)")
	if err := e.parseArgs(); err != nil {
		return err
	}
	if e.fs.NArg() != 1 {
		return errors.New("key approve needs the key's ID")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	path := "/api/v1/keys/" + url.PathEscape(e.fs.Arg(0))
	body, err := e.signApproval(cl, path, *sign, audit.OpApproveKey, e.fs.Arg(0))
	if err != nil {
		return err
	}
	var k map[string]any
	if err := cl.Do(e.ctx, "POST", path+"/approve", body, &k); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s of %s: %s\n", k["id"], k["username"], k["state"])
	return nil
}

func keyRevoke(e *env) error {
	reason := e.fs.String("reason", "", "why (required)")
	if err := e.parseArgs(); err != nil {
		return err
	}
	if e.fs.NArg() != 1 {
		return errors.New("key revoke needs the key's ID")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	var k map[string]any
	if err := cl.Do(e.ctx, "POST", "/api/v1/keys/"+url.PathEscape(e.fs.Arg(0))+"/revoke", map[string]string{"reason": *reason}, &k); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s of %s: %s\n", k["id"], k["username"], k["state"])
	return nil
}
