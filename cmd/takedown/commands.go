package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/measure"
)

// A command is one thing the CLI does: its flags are declared and parsed by run, which gets
// what the command needs in env.
type command struct {
	name, args string
	run        func(e *env) error
}

// commands lists every command in the order the usage shows them.
var commands = []command{
	{"login", "-user U -password P | -sso   get and store an API token", login},
	{"logout", "                             revoke the stored token and forget it", logout},
	{"enrol", "-user U -code C -password P   set your password with the code an administrator gave you", enrol},
	{"case create", "-title T [-summary S]        open a case", caseCreate},
	{"case list", "[-limit N]                   the cases you may read, newest first", caseList},
	{"measure create", "-case C -plan FILE           open a draft measure request (plan as JSON)", measureCreate},
	{"measure list", "[-stage S] [-case C] [-limit N]  the measures you may read", measureList},
	{"measure show", "[-digest] M                  a measure's state (with -digest, only the digest a decision names)", measureShow},
	{"measure stix", "[-tlp T] [-out FILE] M       a closed measure as a STIX 2.1 bundle for partners (TLP:AMBER by default)", measureSTIX},
	{"measure history", "M                            its audit entries, in order", measureHistory},
	{"targets add", "-measure M [-location L] FILE  add targets (one per line, or CSV with a header row)", targetsAdd},
	{"targets import", "-measure M [-format stix|misp] [-yes] FILE   preview a STIX 2.1 bundle or MISP event, then import it\n                   | -confirm IMP -targets-sha256 S             import a preview already seen", targetsImport},
	{"targets remove", "-measure M VALUE...          remove targets from a draft by their values", targetsRemove},
	{"evidence add", "-measure M -kind K -provenance P [-tlp T] [-legal-basis B] FILE...", evidenceAdd},
	{"act", "-measure M -op OP [-digest D] [-decision D] [-reason R] [-body B] [-conflicted|-no-conflict]\n                   [-gate G -reference REF] [-condition C]... [-idempotency-key K] [-json FILE]\n                   [-sign ~/.ssh/id_ed25519.pub]  sign the decision with your registered SSH key", act},
	{"key add", "-ssh FILE.pub [-label L]       propose your SSH key for signing decisions (an administrator approves)", keyAdd},
	{"key list", "[-user U | -pending]          your signing keys (administrators: anyone's, or those waiting)", keyList},
	{"key approve", "[-sign FILE.pub] ID          approve another person's key (administrators)", keyApprove},
	{"key revoke", "-reason R ID                 revoke your key at once; another's takes two administrators", keyRevoke},
	{"admin propose", "-kind K -reason R [-user U] [-role R] [-org O -org-name N -org-kind K]\n                   [-username U -display-name N] [-scope S -valid-from T -valid-until T] [-designation D]\n                                                propose an account change for another administrator", adminPropose},
	{"admin approve", "[-sign FILE.pub] ID          approve another administrator's proposal", adminApprove},
	{"policy propose", "-signing | -csv FILE  -reason R  propose a policy version: the signing policy, or the rules of a CSV file", policyPropose},
	{"policy approve", "[-sign FILE.pub] vN         put another administrator's proposed policy version in force", policyApprove},
	{"audit verify", "-policy P -archive DIR [-state F]   verify an exported audit log offline", auditVerify},
	{"audit verify", "-policy P -proof F -record R        verify one record with its proof", nil},
	{"audit monitor", "-policy P -state F [-interval D] [-stall D] [-webhook URL] [-mail-to A -smtp-addr H:P]   watch a log's public checkpoints and tiles: exit 2 on a fork,\n                   a rollback, a stalled log or a missing cosignature", auditMonitor},
	{"audit record", "-archive DIR -index N               print one logged record from an export", auditRecord},
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: takedown <command> [flags]\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-16s %s\n", c.name, c.args)
	}
	b.WriteString("\nEvery command takes -server (TAKEDOWN_SERVER, default http://127.0.0.1:8080).\n")
	return b.String()
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	name   string
	fs     *flag.FlagSet
	args   []string // the command's arguments, for fs
	server *string
	out    io.Writer
	in     io.Reader // the person's answers (standard input)
	tty    *bool     // set by tests: whether in is a terminal
}

// parse parses the command's flags, declared by then.
// parse reads the flags of a command that takes no arguments: a word left over is refused, as
// it is most often the rest of an unquoted value (-reason every decision signed).
func (e *env) parse() error {
	if err := e.parseArgs(); err != nil {
		return err
	}
	if e.fs.NArg() > 0 {
		return fmt.Errorf("%s takes no argument %q: a value with spaces needs quotes (-reason \"…\")", e.name, e.fs.Arg(0))
	}
	return nil
}

// parseArgs reads the command's flags wherever they stand among its arguments (`key approve ID
// -sign F` reads as `key approve -sign F ID`); after "--" everything is an argument.
func (e *env) parseArgs() error {
	args, positional := e.args, []string{}
	for {
		if err := e.fs.Parse(args); err != nil {
			return err
		}
		rest := e.fs.Args()
		if len(rest) == 0 {
			break
		}
		if at := len(args) - len(rest); at > 0 && args[at-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	var err error
	e.fs.Visit(func(f *flag.Flag) {
		if f.Name == "sign" && f.Value.String() == "" {
			err = errors.New("-sign needs your registered key's public key file (e.g. ~/.ssh/id_ed25519.pub)")
		}
	})
	if err != nil {
		return err
	}
	return e.fs.Parse(append([]string{"--"}, positional...))
}

// client is an API client with the stored token (or TAKEDOWN_TOKEN).
func (e *env) client() (*client.Client, error) {
	tok := os.Getenv("TAKEDOWN_TOKEN")
	if tok == "" {
		b, err := os.ReadFile(tokenFile())
		if err != nil {
			return nil, fmt.Errorf("no token: run `takedown login` or set TAKEDOWN_TOKEN")
		}
		tok = strings.TrimSpace(string(b))
	}
	return &client.Client{BaseURL: strings.TrimRight(*e.server, "/"), Token: tok}, nil
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	return runWith(ctx, args, out, os.Stdin, nil)
}

// runWith runs a command with its input, and tty saying whether it is a terminal (nil: ask).
func runWith(ctx context.Context, args []string, out io.Writer, in io.Reader, tty *bool) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage())
		return errors.New("no command")
	}
	if slices.Contains([]string{"-h", "--help", "help"}, args[0]) {
		fmt.Fprint(out, usage())
		return nil
	}
	name := args[0]
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		if i := slices.IndexFunc(commands, func(c command) bool { return c.name == name+" "+args[1] }); i >= 0 {
			name += " " + args[1]
			args = args[1:]
		}
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name && c.run != nil })
	if i < 0 {
		fmt.Fprint(os.Stderr, usage())
		return fmt.Errorf("unknown command %q", name)
	}
	fs := flag.NewFlagSet("takedown "+name, flag.ContinueOnError)
	e := &env{ctx: ctx, name: name, fs: fs, args: args[1:], out: out, in: in, tty: tty,
		server: fs.String("server", envOr("TAKEDOWN_SERVER", "http://127.0.0.1:8080"), "takedownd base URL (TAKEDOWN_SERVER)")}
	return commands[i].run(e)
}

func login(e *env) error {
	user := e.fs.String("user", "", "username")
	pw := e.fs.String("password", os.Getenv("TAKEDOWN_PASSWORD"), "password (TAKEDOWN_PASSWORD)")
	sso := e.fs.Bool("sso", false, "sign on through the server's identity provider in a browser instead of a password")
	browser := e.fs.String("browser", os.Getenv("BROWSER"), "with -sso: the command that opens the sign-on URL (BROWSER); empty: the URL is printed to open by hand")
	wait := e.fs.Duration("timeout", 5*time.Minute, "with -sso: how long to wait for the browser to come back")
	listen := e.fs.String("listen", "127.0.0.1:0", "with -sso: the loopback address the browser comes back to (a fixed port to forward over SSH)")
	if err := e.parse(); err != nil {
		return err
	}
	var cl *client.Client
	var err error
	if *sso {
		if *user != "" {
			return errors.New("-sso signs on without -user: the identity provider says who you are")
		}
		ctx, cancel := context.WithTimeout(e.ctx, *wait)
		defer cancel()
		cl, err = client.LoginSSO(ctx, *e.server, *listen, func(u string) error {
			fmt.Fprintf(os.Stderr, "Sign on in a browser at:\n\n  %s\n\nWaiting up to %v for it to come back...\n", u, *wait)
			if *browser == "" {
				return nil
			}
			args := strings.Fields(*browser)
			if err := exec.Command(args[0], append(args[1:], u)...).Start(); err != nil {
				fmt.Fprintf(os.Stderr, "could not run %s (%v): open the URL by hand\n", args[0], err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var me struct {
			Username string `json:"username"`
		}
		if err := cl.Do(e.ctx, "GET", "/api/v1/me", nil, &me); err != nil {
			return fmt.Errorf("read who signed on: %w", err)
		}
		*user = me.Username
	} else if cl, err = client.Login(e.ctx, *e.server, *user, *pw); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tokenFile()), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tokenFile(), []byte(cl.Token+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "logged in as %s; token stored in %s\n", *user, tokenFile())
	return nil
}

func logout(e *env) error {
	if err := e.parse(); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	if err := cl.Do(e.ctx, "DELETE", "/api/v1/tokens/current", nil, nil); err != nil {
		return err
	}
	if err := os.Remove(tokenFile()); err != nil && !os.IsNotExist(err) {
		return err
	}
	fmt.Fprintln(e.out, "logged out; the token is revoked")
	return nil
}

func enrol(e *env) error {
	user := e.fs.String("user", "", "username")
	code := e.fs.String("code", os.Getenv("TAKEDOWN_ENROLMENT_CODE"), "one-time enrolment code (TAKEDOWN_ENROLMENT_CODE)")
	pw := e.fs.String("password", os.Getenv("TAKEDOWN_PASSWORD"), "the new password, 12 to 72 bytes (TAKEDOWN_PASSWORD)")
	if err := e.parse(); err != nil {
		return err
	}
	cl := &client.Client{BaseURL: strings.TrimRight(*e.server, "/")}
	if err := cl.Do(e.ctx, "POST", "/api/v1/enrol", map[string]string{"username": *user, "code": *code, "password": *pw}, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s enrolled; log in with `takedown login -user %s`\n", *user, *user)
	return nil
}

func caseCreate(e *env) error {
	title := e.fs.String("title", "", "case title")
	summary := e.fs.String("summary", "", "case summary")
	if err := e.parse(); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	id, err := cl.CreateCase(e.ctx, *title, *summary)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.out, id)
	return nil
}

func caseList(e *env) error {
	limit := e.fs.Int("limit", 50, "at most this many, newest first (up to 500)")
	if err := e.parse(); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	var cases []struct{ ID, Org, Title string }
	if err := cl.Do(e.ctx, "GET", "/api/v1/cases?"+url.Values{"limit": {strconv.Itoa(*limit)}}.Encode(), nil, &cases); err != nil {
		return err
	}
	for _, k := range cases {
		fmt.Fprintf(e.out, "%s  %-12s %s\n", k.ID, k.Org, k.Title)
	}
	return nil
}

func measureCreate(e *env) error {
	caseID := e.fs.String("case", "", "case ID")
	planFile := e.fs.String("plan", "", "plan as a JSON file")
	if err := e.parse(); err != nil {
		return err
	}
	raw, err := os.ReadFile(*planFile)
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	var plan json.RawMessage
	if err := json.Unmarshal(withoutBOM(raw), &plan); err != nil {
		return fmt.Errorf("plan %s is not JSON: %w", *planFile, err)
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	m, err := cl.CreateMeasure(e.ctx, *caseID, plan)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.out, m.ID)
	return nil
}

func measureList(e *env) error {
	limit := e.fs.Int("limit", 50, "at most this many, most recently changed first (up to 500)")
	stage := e.fs.String("stage", "", "only measures in this stage")
	caseID := e.fs.String("case", "", "only measures of this case")
	if err := e.parse(); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *stage != "" {
		q.Set("stage", *stage)
	}
	if *caseID != "" {
		q.Set("case", *caseID)
	}
	var list struct {
		Measures []struct {
			ID, Case, Stage, Title string
			Version                int
		}
	}
	if err := cl.Do(e.ctx, "GET", "/api/v1/measures?"+q.Encode(), nil, &list); err != nil {
		return err
	}
	for _, m := range list.Measures {
		fmt.Fprintf(e.out, "%s  %-20s v%-3d %s  %s\n", m.ID, m.Stage, m.Version, m.Case, m.Title)
	}
	return nil
}

// measureArg parses the flags and returns the one measure ID the command takes.
func (e *env) measureArg() (string, error) {
	if err := e.parseArgs(); err != nil {
		return "", err
	}
	if e.fs.NArg() != 1 {
		return "", fmt.Errorf("%s needs a measure ID", e.name)
	}
	return e.fs.Arg(0), nil
}

func measureShow(e *env) error {
	digestOnly := e.fs.Bool("digest", false, "print only the current version's digest, what a decision on it names (-digest of act)")
	id, err := e.measureArg()
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	var m map[string]any
	if err := cl.Do(e.ctx, "GET", "/api/v1/measures/"+url.PathEscape(id), nil, &m); err != nil {
		return err
	}
	if *digestOnly {
		d, _ := m["digest"].(string)
		if d == "" {
			return fmt.Errorf("%s has no sealed version yet (stage %v)", id, m["stage"])
		}
		fmt.Fprintln(e.out, d)
		return nil
	}
	return e.printJSON(m)
}

// measureSTIX writes a closed measure's STIX 2.1 bundle; with -out, the file appears only
// once the whole bundle has arrived.
func measureSTIX(e *env) error {
	tlp := e.fs.String("tlp", "amber", "the bundle's TLP marking: clear, green, amber or red")
	outFile := e.fs.String("out", "", "write the bundle to FILE (default: standard output)")
	id, err := e.measureArg()
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	path := "/api/v1/measures/" + url.PathEscape(id) + "/stix?" + url.Values{"tlp": {*tlp}}.Encode()
	if *outFile == "" {
		return cl.Do(e.ctx, "GET", path, nil, e.out)
	}
	f, err := os.CreateTemp(filepath.Dir(*outFile), ".stix-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := cl.Do(e.ctx, "GET", path, nil, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), *outFile); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *outFile)
	return nil
}

func measureHistory(e *env) error {
	id, err := e.measureArg()
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	h, err := cl.History(e.ctx, id)
	if err != nil {
		return err
	}
	for _, r := range h {
		line := fmt.Sprintf("%s  %-14s %-28s %s -> %s", r.TS, r.Actor.ID, r.Action, r.From, r.To)
		if r.Reason != "" {
			line += "  (" + r.Reason + ")"
		}
		fmt.Fprintln(e.out, line)
	}
	return nil
}

func targetsAdd(e *env) error {
	measureID := e.fs.String("measure", "", "measure ID")
	location := e.fs.String("location", "", "location for lines that give none: domestic, abroad or unknown")
	if err := e.parseArgs(); err != nil {
		return err
	}
	if e.fs.NArg() != 1 {
		return errors.New("targets add needs one file (- for standard input)")
	}
	targets, err := readTargets(e.fs.Arg(0), *location)
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	m, err := cl.AddTargets(e.ctx, *measureID, targets)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%d targets added; the draft has %d\n", len(targets), m.Targets)
	return nil
}

// importPreview is what the server answers for an uploaded file.
type importPreview struct {
	ID     string `json:"id"`
	Format string `json:"format"`
	Source struct {
		ID, Name, Producer, TLP, SHA256 string
	} `json:"source"`
	Objects int `json:"objects"`
	Counts  struct {
		Targets, Skipped, Attribution int
		InDraft                       int `json:"in_draft"`
		Noted                         int `json:"noted"`
	} `json:"counts"`
	Targets []struct {
		Target measure.Target `json:"target"`
		Notes  []string       `json:"notes"`
	} `json:"targets"`
	Attribution []struct {
		Kind, Name string
		Aliases    []string
	} `json:"attribution"`
	SkippedBy []struct {
		Type, Reason string
		Count        int
	} `json:"skipped_by_reason"`
	TargetsSHA256 string `json:"targets_sha256"`
}

// targetsImport uploads a threat-intelligence file, prints its preview, and imports it when
// the person confirms it (at the terminal, or with -yes); -confirm imports a preview seen before.
func targetsImport(e *env) error {
	measureID := e.fs.String("measure", "", "measure ID (a draft)")
	format := e.fs.String("format", "", "stix or misp (left out: detected)")
	yes := e.fs.Bool("yes", false, "import what the preview lists without asking")
	confirm := e.fs.String("confirm", "", "an import ID whose preview was seen: import it")
	sum := e.fs.String("targets-sha256", "", "with -confirm: the targets_sha256 the preview printed")
	if err := e.parseArgs(); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	if *confirm != "" {
		if e.fs.NArg() != 0 || *sum == "" {
			return errors.New("-confirm takes the import ID and -targets-sha256, and no file")
		}
		return e.confirmImport(cl, *confirm, *sum)
	}
	if e.fs.NArg() != 1 || *measureID == "" {
		return errors.New("targets import needs -measure and one file (- for standard input)")
	}
	var r io.Reader = os.Stdin
	if path := e.fs.Arg(0); path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	q := url.Values{"name": {filepath.Base(e.fs.Arg(0))}}
	if *format != "" {
		q.Set("format", *format)
	}
	var p importPreview
	if err := cl.Do(e.ctx, "POST", "/api/v1/measures/"+url.PathEscape(*measureID)+"/imports?"+q.Encode(), r, &p); err != nil {
		return err
	}
	e.printPreview(p)
	if p.Counts.Targets == 0 && p.Counts.Attribution == 0 {
		return errors.New("nothing to import: the file names no target the draft does not hold already and no attribution the case does not")
	}
	if !*yes {
		if !e.terminal() {
			fmt.Fprintf(e.out, "nothing imported yet; to import what is listed above:\n  takedown targets import -confirm %s -targets-sha256 %s\n", p.ID, p.TargetsSHA256)
			return nil
		}
		fmt.Fprintf(os.Stderr, "import these %d targets and %d attribution entries into %s? [y/N] ", p.Counts.Targets, p.Counts.Attribution, *measureID)
		answer, _ := bufio.NewReader(e.in).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return fmt.Errorf("not confirmed: nothing was imported (the preview is %s)", p.ID)
		}
	}
	return e.confirmImport(cl, p.ID, p.TargetsSHA256)
}

func (e *env) confirmImport(cl *client.Client, id, sum string) error {
	var m client.Measure
	if err := cl.Do(e.ctx, "POST", "/api/v1/imports/"+url.PathEscape(id)+"/confirm", map[string]any{"targets_sha256": sum}, &m); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "imported; the draft %s has %d targets\n", m.ID, m.Targets)
	return nil
}

// printPreview says what an import would add and what it leaves out, as the web page does.
func (e *env) printPreview(p importPreview) {
	w := e.out
	fmt.Fprintf(w, "%s file %s (sha256 %s)\n", strings.ToUpper(p.Format), p.Source.ID, p.Source.SHA256)
	for _, f := range [][2]string{{"name", p.Source.Name}, {"producer", p.Source.Producer}, {"marking", p.Source.TLP}} {
		if f[1] != "" {
			fmt.Fprintf(w, "  %-9s %s\n", f[0], clean(f[1]))
		}
	}
	fmt.Fprintf(w, "%d objects read: %d targets to add (%d with a note), %d already in the draft, %d skipped, %d attribution entries\n",
		p.Objects, p.Counts.Targets, p.Counts.Noted, p.Counts.InDraft, p.Counts.Skipped, p.Counts.Attribution)
	const shown = 20
	for i, c := range p.Targets {
		if i == shown {
			fmt.Fprintf(w, "  … and %d more (GET /api/v1/imports/%s?offset=%d)\n", p.Counts.Targets-shown, p.ID, shown)
			break
		}
		t := c.Target
		v := t.Value
		if u := measure.UnicodeValue(t.Kind, t.Value); u != "" {
			v = u + " (" + v + ")"
		}
		if t.Port != 0 {
			v += ":" + strconv.Itoa(t.Port)
		}
		fmt.Fprintf(w, "  + %-6s %-40s %-10s %-24s %-8s %-2s %s\n", t.Kind, clean(v), or(t.Role, "-"), t.Ownership, t.Location, or(t.Country, "-"), t.Source)
		for _, n := range c.Notes {
			fmt.Fprintf(w, "      note: %s\n", clean(n))
		}
	}
	for _, a := range p.Attribution {
		aka := ""
		if len(a.Aliases) > 0 {
			aka = " (" + clean(strings.Join(a.Aliases, ", ")) + ")"
		}
		fmt.Fprintf(w, "  attribution: %s %s%s\n", a.Kind, clean(a.Name), aka)
	}
	for _, s := range p.SkippedBy {
		fmt.Fprintf(w, "  skipped %5d %s: %s\n", s.Count, clean(s.Type), clean(s.Reason))
	}
	fmt.Fprintf(w, "targets_sha256 %s\n", p.TargetsSHA256)
}

// clean shows text from a file others wrote on one line, its control characters quoted.
func clean(s string) string {
	q := strconv.Quote(s)
	if q[1:len(q)-1] == s {
		return s
	}
	return q
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func targetsRemove(e *env) error {
	measureID := e.fs.String("measure", "", "measure ID")
	if err := e.parseArgs(); err != nil {
		return err
	}
	if e.fs.NArg() == 0 {
		return fmt.Errorf("name the values of the targets to remove")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	var m client.Measure
	if err := cl.Do(e.ctx, "POST", "/api/v1/measures/"+url.PathEscape(*measureID)+"/targets/remove", map[string]any{"values": e.fs.Args()}, &m); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%d targets removed; the draft has %d\n", e.fs.NArg(), m.Targets)
	return nil
}

func evidenceAdd(e *env) error {
	measureID := e.fs.String("measure", "", "measure ID")
	kind := e.fs.String("kind", "", "evidence kind, e.g. pcap, malware_sample, log, report")
	prov := e.fs.String("provenance", "", "own_investigation, partner_report, victim_report, communications_information or osint")
	tlp := e.fs.String("tlp", "amber", "TLP marking")
	basis := e.fs.String("legal-basis", "", "legal basis of acquisition (required for communications_information)")
	acquirer := e.fs.String("acquirer", "", "who acquired it")
	tool := e.fs.String("tool", "", "tool used")
	if err := e.parseArgs(); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	for _, f := range e.fs.Args() {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		meta := url.Values{"filename": {filepath.Base(f)}, "kind": {*kind}, "provenance": {*prov}, "tlp": {*tlp},
			"legal_basis": {*basis}, "acquirer": {*acquirer}, "tool": {*tool}}
		ev, err := cl.AddEvidence(e.ctx, *measureID, meta, fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(e.out, "%s sha256:%s\n", f, ev["sha256"])
	}
	return nil
}

func act(e *env) error {
	fs := e.fs
	measureID := fs.String("measure", "", "measure ID")
	op := fs.String("op", "", "operation, e.g. submit, legal_review, vote (see /api/v1/openapi.json)")
	decision := fs.String("decision", "", "decision, e.g. approve, return, reject")
	reason := fs.String("reason", "", "reason")
	body := fs.String("body", "", "report or answer text")
	conflicted := fs.Bool("conflicted", false, "declare_conflict: the member has a conflict and is recused (-reason says why)")
	noConflict := fs.Bool("no-conflict", false, "declare_conflict: the member has no conflict")
	digest := fs.String("digest", "", "the digest of the version you decided on, as `takedown measure show` prints it;\nrequired for decisions on a version (without it, a terminal is shown the version and asked)")
	gate := fs.String("gate", "", "record_gate: foreign_ministry or pm_order")
	reference := fs.String("reference", "", "record_gate: the consultation record or order document")
	var conditions []string
	fs.Func("condition", "vote: a condition of approval; repeat for several", func(v string) error {
		conditions = append(conditions, v)
		return nil
	})
	confirm := fs.String("confirm", "", "legal_review: the statutory requirements you confirm, comma-separated, or all ("+strings.Join(measure.LegalRequirements, ",")+")")
	key := fs.String("idempotency-key", "", "a key of your choosing: a retry with the same key acts at most once")
	jsonFile := fs.String("json", "", "full action body as a JSON file (steps, order, notifications…)")
	sign := fs.String("sign", "", "sign the decision with your registered SSH key: its public key file (the key from ssh-agent, else ssh-keygen -Y sign with the private file beside it)")
	if err := e.parse(); err != nil {
		return err
	}
	in := map[string]any{}
	if *jsonFile != "" {
		raw, err := os.ReadFile(*jsonFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(withoutBOM(raw), &in); err != nil {
			return fmt.Errorf("%s is not a JSON object: %w", *jsonFile, err)
		}
	}
	for k, v := range map[string]string{"decision": *decision, "reason": *reason, "body": *body, "gate": *gate, "reference": *reference} {
		if v != "" {
			in[k] = v
		}
	}
	switch {
	case *conflicted && *noConflict:
		return fmt.Errorf("-conflicted and -no-conflict contradict each other: give one")
	case *conflicted:
		in["conflicted"] = true
	case *noConflict:
		in["conflicted"] = false
	case *op == "declare_conflict" && in["conflicted"] == nil:
		return fmt.Errorf("declare_conflict needs a choice: -conflicted (you step aside; -reason says why) or -no-conflict")
	}
	if *digest != "" {
		in["digest"] = *digest
	}
	if conditions != nil {
		in["conditions"] = conditions
	}
	switch *confirm {
	case "":
	case "all":
		in["checklist"] = measure.LegalRequirements
	default:
		in["checklist"] = strings.Split(*confirm, ",")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	if in["digest"] == nil && measure.Judges(authz.Op(*op)) {
		d, err := e.confirmVersion(cl, *measureID, *op)
		if err != nil {
			return err
		}
		in["digest"] = d
	}
	if *sign != "" {
		if err := e.signDecision(cl, *measureID, *op, *sign, in); err != nil {
			return err
		}
	}
	m, err := cl.ActOnce(e.ctx, *measureID, *op, *key, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s: %s (version %d)\n", m.ID, m.Stage, m.Version)
	return nil
}

// confirmVersion shows a person who gave no -digest the version their decision would bind to,
// and on a terminal asks them to confirm it; elsewhere it refuses, since nobody saw it.
func (e *env) confirmVersion(cl *client.Client, id, op string) (string, error) {
	m, err := cl.Measure(e.ctx, id)
	if err != nil {
		return "", err
	}
	if m.Digest == "" {
		return "", fmt.Errorf("%s judges a sealed version, and %s has none (stage %s)", op, id, m.Stage)
	}
	fmt.Fprintf(os.Stderr, "%s is at version %d, stage %s: %d targets, %d evidence files\ndigest %s\n",
		m.ID, m.Version, m.Stage, m.Targets, m.Evidence, m.Digest)
	if !e.terminal() {
		return "", fmt.Errorf("-digest is required for %s: read the measure (takedown measure show %s) and give the digest you decided on", op, id)
	}
	fmt.Fprintf(os.Stderr, "record your %s on this version? [y/N] ", op)
	answer, _ := bufio.NewReader(e.in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return "", fmt.Errorf("not confirmed: nothing was sent")
	}
	return m.Digest, nil
}

// terminal reports whether the command's input is a person at a terminal.
func (e *env) terminal() bool {
	if e.tty != nil {
		return *e.tty
	}
	// /dev/null is a character device too: ask the terminal driver.
	return term.IsTerminal(int(os.Stdin.Fd()))
}

func adminPropose(e *env) error {
	fs := e.fs
	kind := fs.String("kind", "", "create_org, create_user, retire_user, grant_role, revoke_role, designate or revoke_designation")
	reason := fs.String("reason", "", "why (required)")
	user := fs.String("user", "", "the user's ID (retire_user, grant_role, revoke_role, designate, revoke_designation)")
	role := fs.String("role", "", "the role (grant_role, revoke_role; create_user: a first role)")
	org := fs.String("org", "", "create_org: the new organisation's ID; create_user: the user's organisation")
	orgName := fs.String("org-name", "", "create_org: its name")
	orgKind := fs.String("org-kind", "agency", "create_org: agency or commission")
	username := fs.String("username", "", "create_user: the login name")
	displayName := fs.String("display-name", "", "create_user: the person's name")
	scope := fs.String("scope", "", "designate: npa or prefectural")
	from := fs.String("valid-from", "", "designate: RFC 3339 time")
	until := fs.String("valid-until", "", "designate: RFC 3339 time")
	designation := fs.String("designation", "", "revoke_designation: the designation's ID")
	if err := e.parse(); err != nil {
		return err
	}
	change := map[string]any{"kind": *kind, "reason": *reason}
	for k, v := range map[string]string{"user": *user, "role": *role, "scope": *scope, "designation": *designation} {
		if v != "" {
			change[k] = v
		}
	}
	for k, v := range map[string]string{"valid_from": *from, "valid_until": *until} {
		if v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fmt.Errorf("-%s: %w", strings.ReplaceAll(k, "_", "-"), err)
			}
			change[k] = t
		}
	}
	switch *kind {
	case "create_org":
		change["account"] = map[string]string{"org_id": *org, "org_name": *orgName, "org_kind": *orgKind}
	case "create_user":
		change["account"] = map[string]string{"org_id": *org, "username": *username, "display_name": *displayName}
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	var out struct{ ID string }
	if err := cl.Do(e.ctx, "POST", "/api/v1/admin/role-changes", change, &out); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s proposed; another administrator approves it with `takedown admin approve %s`\n", out.ID, out.ID)
	return nil
}

func policyPropose(e *env) error {
	signing := e.fs.Bool("signing", false, "propose the signing policy: the default roles, every decision, batch of steps and approval signed personally")
	file := e.fs.String("csv", "", "propose the rules of this file instead, one role,op,allow|deny|sign per line")
	reason := e.fs.String("reason", "", "why (required)")
	if err := e.parse(); err != nil {
		return err
	}
	var rules []authz.Rule
	switch {
	case *signing == (*file != ""):
		return errors.New("policy propose needs -signing or -csv FILE (one of them)")
	case *signing:
		rules = authz.SigningPolicy()
	default:
		raw, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		rows, err := csv.NewReader(bytes.NewReader(withoutBOM(raw))).ReadAll()
		if err != nil {
			return fmt.Errorf("%s is not CSV: %w", *file, err)
		}
		for i, row := range rows {
			if len(row) != 3 {
				return fmt.Errorf("%s line %d: needs 3 columns: role,op,allow|deny|sign", *file, i+1)
			}
			rules = append(rules, authz.Rule{Role: authz.Role(strings.TrimSpace(row[0])), Op: strings.TrimSpace(row[1]), Effect: strings.TrimSpace(row[2])})
		}
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	var out struct {
		Version string `json:"version"`
	}
	if err := cl.Do(e.ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": rules, "reason": *reason}, &out); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "policy %s proposed (%d rules); another administrator approves it with `takedown policy approve %s`\n", out.Version, len(rules), out.Version)
	return nil
}

// showPolicyChange prints what a proposed version changes against the policy in force, rule
// by rule, for the administrator to read before approving it.
func (e *env) showPolicyChange(cl *client.Client, version string) error {
	var pending struct {
		Proposals []struct {
			Version, Reason string
			Rules           []authz.Rule
		}
	}
	var current struct {
		Version string
		Rules   []authz.Rule
	}
	if err := cl.Do(e.ctx, "GET", "/api/v1/admin/policy/proposals", nil, &pending); err != nil {
		return err
	}
	if err := cl.Do(e.ctx, "GET", "/api/v1/admin/policy", nil, &current); err != nil {
		return err
	}
	line := func(r authz.Rule) string { return string(r.Role) + "," + r.Op + "," + r.Effect }
	for _, p := range pending.Proposals {
		if p.Version != version {
			continue
		}
		fmt.Fprintf(os.Stderr, "policy %s (%d rules, reason: %s) against %s in force:\n", p.Version, len(p.Rules), p.Reason, current.Version)
		now := map[string]bool{}
		for _, r := range current.Rules {
			now[line(r)] = true
		}
		next := map[string]bool{}
		changed := 0
		for _, r := range p.Rules {
			next[line(r)] = true
			if !now[line(r)] {
				fmt.Fprintf(os.Stderr, "  + %s\n", line(r))
				changed++
			}
		}
		for _, r := range current.Rules {
			if !next[line(r)] {
				fmt.Fprintf(os.Stderr, "  - %s\n", line(r))
				changed++
			}
		}
		if changed == 0 {
			fmt.Fprintln(os.Stderr, "  (the same rules)")
		}
		return nil
	}
	return nil // not waiting: the approval says why
}

func policyApprove(e *env) error {
	sign := e.fs.String("sign", "", "sign the approval with your registered SSH key (its .pub file)")
	if err := e.parseArgs(); err != nil {
		return err
	}
	if e.fs.NArg() != 1 {
		return errors.New("policy approve needs the version, like v2")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	version := "v" + strings.TrimPrefix(e.fs.Arg(0), "v")
	path := "/api/v1/admin/policy/" + url.PathEscape(version)
	if err := e.showPolicyChange(cl, version); err != nil {
		return err
	}
	body, err := e.signApproval(cl, path, *sign, audit.OpApprovePolicy, version)
	if err != nil {
		return err
	}
	var out struct {
		Version string `json:"version"`
	}
	if err := cl.Do(e.ctx, "POST", path+"/approve", body, &out); err != nil {
		return err
	}
	// Approved is not yet in force: the servers load it on the notification, after checking it
	// against the log (a version altered in SQL is refused and the log halted).
	for range 50 {
		var p struct {
			Version string `json:"version"`
		}
		if err := cl.Do(e.ctx, "GET", "/api/v1/admin/policy", nil, &p); err == nil && p.Version == out.Version {
			fmt.Fprintf(e.out, "policy %s is in force\n", out.Version)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("policy %s is approved but not in force after 5 s: the server did not load it (see its log, and /healthz for a halt)", out.Version)
}

func adminApprove(e *env) error {
	sign := e.fs.String("sign", "", "sign the approval with your registered SSH key (its .pub file)")
	if err := e.parseArgs(); err != nil {
		return err
	}
	if e.fs.NArg() != 1 {
		return errors.New("admin approve needs the proposal's ID")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	path := "/api/v1/admin/role-changes/" + url.PathEscape(e.fs.Arg(0))
	body, err := e.signApproval(cl, path, *sign, audit.OpApproveRoleChange, e.fs.Arg(0))
	if err != nil {
		return err
	}
	var c map[string]any
	if err := cl.Do(e.ctx, "POST", path+"/approve", body, &c); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s approved: %s", c["id"], c["kind"])
	if u, ok := c["user"].(string); ok && u != "" {
		fmt.Fprintf(e.out, " (user %s)", u)
	}
	fmt.Fprintln(e.out)
	if code, ok := c["enrolment_code"].(string); ok {
		fmt.Fprintf(e.out, "enrolment code, shown once, valid 72 h; give it to the user out of band:\n%s\n", code)
	}
	return nil
}

func auditRecord(e *env) error {
	archive := e.fs.String("archive", "", "directory written by `takedownd audit export`")
	index := e.fs.Int64("index", -1, "the entry's index in the log")
	if err := e.parse(); err != nil {
		return err
	}
	rec, err := audit.ArchiveRecord(*archive, *index)
	if err != nil {
		return err
	}
	_, err = e.out.Write(rec)
	return err
}
