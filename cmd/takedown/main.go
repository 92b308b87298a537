// Command takedown is the command-line client of takedownd, for officers scripting requests
// and for anyone reading a measure's state and history.
//
//	takedown login -user officer -password …        store a token for later commands
//	takedown case create -title … [-summary …]       open a case; prints its ID
//	takedown measure create -case C -plan plan.json  open a draft; prints its ID
//	takedown targets add -measure M FILE             add targets: one per line, or CSV with a header
//	takedown evidence add -measure M -kind K -provenance P FILE…
//	takedown act -measure M -op OP [-decision D] [-reason R] [-body B] [-conflicted]
//	             [-gate G -reference REF] [-condition C]... [-idempotency-key K] [-json FILE]
//	takedown measure show M | takedown measure history M
//	takedown audit verify -policy P -archive DIR [-state F]   (offline; no server needed)
//	takedown audit record -archive DIR -index N             one logged record, for -proof checks
//
// The server is -server or TAKEDOWN_SERVER (default http://127.0.0.1:8080); the token is
// TAKEDOWN_TOKEN, else the file `login` wrote (~/.config/takedown/token).
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h: the usage was asked for and printed
		}
		fmt.Fprintln(os.Stderr, "takedown:", err)
		os.Exit(1)
	}
}

const usage = `usage: takedown <command> [flags]

  login            -user U -password P          get and store an API token
  logout                                        revoke the stored token and forget it
  case create      -title T [-summary S]        open a case
  measure create   -case C -plan FILE           open a draft measure request (plan as JSON)
  targets add      -measure M [-location L] FILE  add targets (one per line, or CSV with a header row)
  evidence add     -measure M -kind K -provenance P [-tlp T] [-legal-basis B] FILE...
  act              -measure M -op OP [-decision D] [-reason R] [-body B] [-conflicted]
                   [-gate G -reference REF] [-condition C]... [-idempotency-key K] [-json FILE]
  case list        [-limit N]                   the cases you may read, newest first
  measure list     [-stage S] [-case C] [-limit N]  the measures you may read
  measure show     M                            a measure's state
  measure history  M                            its audit entries, in order
  audit verify     -policy P -archive DIR [-state F]   verify an exported audit log offline
  audit verify     -policy P -proof F -record R        verify one record with its proof
  audit record     -archive DIR -index N               print one logged record from an export

Every command takes -server (TAKEDOWN_SERVER, default http://127.0.0.1:8080).
`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command")
	}
	name := args[0]
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") && (name == "case" || name == "measure" || name == "targets" || name == "evidence" || name == "audit") {
		name += " " + args[1]
		args = args[1:]
	}
	fs := flag.NewFlagSet("takedown "+name, flag.ContinueOnError)
	server := fs.String("server", envOr("TAKEDOWN_SERVER", "http://127.0.0.1:8080"), "takedownd base URL (TAKEDOWN_SERVER)")
	c := func() (*client.Client, error) {
		tok := os.Getenv("TAKEDOWN_TOKEN")
		if tok == "" {
			b, err := os.ReadFile(tokenFile())
			if err != nil {
				return nil, fmt.Errorf("no token: run `takedown login` or set TAKEDOWN_TOKEN")
			}
			tok = strings.TrimSpace(string(b))
		}
		return &client.Client{BaseURL: strings.TrimRight(*server, "/"), Token: tok}, nil
	}
	printJSON := func(v any) error {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	switch name {
	case "login":
		user := fs.String("user", "", "username")
		pw := fs.String("password", os.Getenv("TAKEDOWN_PASSWORD"), "password (TAKEDOWN_PASSWORD)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cl, err := client.Login(ctx, *server, *user, *pw)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(tokenFile()), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(tokenFile(), []byte(cl.Token+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "logged in as %s; token stored in %s\n", *user, tokenFile())
		return nil
	case "logout":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cl, err := c()
		if err != nil {
			return err
		}
		if err := cl.Do(ctx, "DELETE", "/api/v1/tokens/current", nil, nil); err != nil {
			return err
		}
		if err := os.Remove(tokenFile()); err != nil && !os.IsNotExist(err) {
			return err
		}
		fmt.Fprintln(out, "logged out; the token is revoked")
		return nil
	case "case create":
		title := fs.String("title", "", "case title")
		summary := fs.String("summary", "", "case summary")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cl, err := c()
		if err != nil {
			return err
		}
		id, err := cl.CreateCase(ctx, *title, *summary)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, id)
		return nil
	case "measure create":
		caseID := fs.String("case", "", "case ID")
		planFile := fs.String("plan", "", "plan as a JSON file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		raw, err := os.ReadFile(*planFile)
		if err != nil {
			return fmt.Errorf("read plan: %w", err)
		}
		var plan json.RawMessage
		if err := json.Unmarshal(raw, &plan); err != nil {
			return fmt.Errorf("plan %s is not JSON: %w", *planFile, err)
		}
		cl, err := c()
		if err != nil {
			return err
		}
		m, err := cl.CreateMeasure(ctx, *caseID, plan)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, m.ID)
		return nil
	case "targets add":
		measureID := fs.String("measure", "", "measure ID")
		location := fs.String("location", "", "location for lines that give none: domestic, abroad or unknown")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("targets add needs one file (- for standard input)")
		}
		targets, err := readTargets(fs.Arg(0), *location)
		if err != nil {
			return err
		}
		cl, err := c()
		if err != nil {
			return err
		}
		m, err := cl.AddTargets(ctx, *measureID, targets)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d targets added; the draft has %d\n", len(targets), m.Targets)
		return nil
	case "evidence add":
		measureID := fs.String("measure", "", "measure ID")
		kind := fs.String("kind", "", "evidence kind, e.g. pcap, malware_sample, log, report")
		prov := fs.String("provenance", "", "own_investigation, partner_report, victim_report, communications_information or osint")
		tlp := fs.String("tlp", "amber", "TLP marking")
		basis := fs.String("legal-basis", "", "legal basis of acquisition (required for communications_information)")
		acquirer := fs.String("acquirer", "", "who acquired it")
		tool := fs.String("tool", "", "tool used")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cl, err := c()
		if err != nil {
			return err
		}
		for _, f := range fs.Args() {
			fh, err := os.Open(f)
			if err != nil {
				return err
			}
			meta := url.Values{"filename": {filepath.Base(f)}, "kind": {*kind}, "provenance": {*prov}, "tlp": {*tlp},
				"legal_basis": {*basis}, "acquirer": {*acquirer}, "tool": {*tool}}
			e, err := cl.AddEvidence(ctx, *measureID, meta, fh)
			fh.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			fmt.Fprintf(out, "%s sha256:%s\n", f, e["sha256"])
		}
		return nil
	case "act":
		measureID := fs.String("measure", "", "measure ID")
		op := fs.String("op", "", "operation, e.g. submit, legal_review, vote (see /api/v1/openapi.json)")
		decision := fs.String("decision", "", "decision, e.g. approve, return, reject")
		reason := fs.String("reason", "", "reason")
		body := fs.String("body", "", "report or answer text")
		conflicted := fs.Bool("conflicted", false, "declare_conflict: the member has a conflict and is recused (-reason says why)")
		gate := fs.String("gate", "", "record_gate: foreign_ministry or pm_order")
		reference := fs.String("reference", "", "record_gate: the consultation record or order document")
		var conditions []string
		fs.Func("condition", "vote: a condition of approval; repeat for several", func(v string) error {
			conditions = append(conditions, v)
			return nil
		})
		key := fs.String("idempotency-key", "", "a key of your choosing: a retry with the same key acts at most once")
		jsonFile := fs.String("json", "", "full action body as a JSON file (steps, order, notifications…)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		in := map[string]any{}
		if *jsonFile != "" {
			raw, err := os.ReadFile(*jsonFile)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &in); err != nil {
				return fmt.Errorf("%s is not a JSON object: %w", *jsonFile, err)
			}
		}
		for k, v := range map[string]string{"decision": *decision, "reason": *reason, "body": *body, "gate": *gate, "reference": *reference} {
			if v != "" {
				in[k] = v
			}
		}
		if *conflicted {
			in["conflicted"] = true
		}
		if conditions != nil {
			in["conditions"] = conditions
		}
		cl, err := c()
		if err != nil {
			return err
		}
		m, err := cl.ActOnce(ctx, *measureID, *op, *key, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %s (version %d)\n", m.ID, m.Stage, m.Version)
		return nil
	case "case list", "measure list":
		limit := fs.Int("limit", 50, "at most this many, newest first (up to 500)")
		stage := fs.String("stage", "", "measure list: only measures in this stage")
		caseID := fs.String("case", "", "measure list: only measures of this case")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cl, err := c()
		if err != nil {
			return err
		}
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		if name == "case list" {
			var cases []struct{ ID, Org, Title string }
			if err := cl.Do(ctx, "GET", "/api/v1/cases?"+q.Encode(), nil, &cases); err != nil {
				return err
			}
			for _, k := range cases {
				fmt.Fprintf(out, "%s  %-12s %s\n", k.ID, k.Org, k.Title)
			}
			return nil
		}
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
		if err := cl.Do(ctx, "GET", "/api/v1/measures?"+q.Encode(), nil, &list); err != nil {
			return err
		}
		for _, m := range list.Measures {
			fmt.Fprintf(out, "%s  %-20s v%-3d %s  %s\n", m.ID, m.Stage, m.Version, m.Case, m.Title)
		}
		return nil
	case "measure show", "measure history":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("%s needs a measure ID", name)
		}
		cl, err := c()
		if err != nil {
			return err
		}
		if name == "measure show" {
			var m map[string]any
			if err := cl.Do(ctx, "GET", "/api/v1/measures/"+url.PathEscape(fs.Arg(0)), nil, &m); err != nil {
				return err
			}
			return printJSON(m)
		}
		h, err := cl.History(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		for _, r := range h {
			line := fmt.Sprintf("%s  %-14s %-28s %s -> %s", r.TS, r.Actor.ID, r.Action, r.From, r.To)
			if r.Reason != "" {
				line += "  (" + r.Reason + ")"
			}
			fmt.Fprintln(out, line)
		}
		return nil
	case "audit verify":
		return auditVerify(args[1:], out)
	case "audit record":
		archive := fs.String("archive", "", "directory written by `takedownd audit export`")
		index := fs.Int64("index", -1, "the entry's index in the log")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		rec, err := audit.ArchiveRecord(*archive, *index)
		if err != nil {
			return err
		}
		_, err = out.Write(rec)
		return err
	case "-h", "--help", "help":
		fmt.Fprint(out, usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", name)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func tokenFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "takedown", "token")
}

var asn = regexp.MustCompile(`(?i)^AS\d+$`)

// guessKind names the kind of a bare target value.
func guessKind(v string) string {
	if _, err := netip.ParseAddr(v); err == nil {
		return "ip"
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return "cidr"
	}
	if strings.Contains(v, "://") {
		return "url"
	}
	if asn.MatchString(v) {
		return "asn"
	}
	return "domain"
}

// readTargets reads one target per line, or a CSV file whose header names the columns
// (kind, value, port, location, country, role, ownership, hosting_provider, registrar).
// Blank lines and lines starting with # are skipped. The server validates every target.
func readTargets(path, location string) ([]map[string]any, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s holds no targets", path)
	}
	var out []map[string]any
	if strings.Contains(lines[0], ",") && strings.Contains(strings.ToLower(lines[0]), "value") {
		recs, err := csv.NewReader(strings.NewReader(strings.Join(lines, "\n"))).ReadAll()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		header := recs[0]
		for i, rec := range recs[1:] {
			t := map[string]any{}
			for j, col := range header {
				col = strings.TrimSpace(strings.ToLower(col))
				v := strings.TrimSpace(rec[j])
				if v == "" {
					continue
				}
				if col == "port" {
					p, err := strconv.Atoi(v)
					if err != nil {
						return nil, fmt.Errorf("%s line %d: port %q is not a number", path, i+2, v)
					}
					t[col] = p
					continue
				}
				t[col] = v
			}
			if value, ok := t["value"].(string); ok && t["kind"] == nil {
				t["kind"] = guessKind(value)
			}
			if t["location"] == nil && location != "" {
				t["location"] = location
			}
			out = append(out, t)
		}
		return out, nil
	}
	for _, l := range lines {
		t := map[string]any{"kind": guessKind(l), "value": l}
		if location != "" {
			t["location"] = location
		}
		out = append(out, t)
	}
	return out, nil
}
