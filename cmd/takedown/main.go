// Command takedown is the command-line client of takedownd, for officers scripting requests
// and for anyone reading a measure's state and history.
//
//	takedown login -user officer -password …        store a token for later commands
//	takedown case create -title … [-summary …]       open a case; prints its ID
//	takedown measure create -case C -plan plan.json  open a draft; prints its ID
//	takedown targets add -measure M FILE             add targets: one per line, or CSV with a header
//	takedown targets import -measure M FILE          preview a STIX 2.1 bundle or MISP event, then import it
//	takedown evidence add -measure M -kind K -provenance P FILE…
//	takedown act -measure M -op OP [-digest D] [-decision D] [-reason R] [-body B] [-conflicted|-no-conflict]
//	             [-gate G -reference REF] [-condition C]... [-idempotency-key K] [-json FILE]
//	takedown measure show M | takedown measure history M
//	takedown audit verify -policy P -archive DIR [-state F]   (offline; no server needed)
//	takedown audit record -archive DIR -index N             one logged record, for -proof checks
//	takedown audit monitor -policy P -state F [-interval D]  watch a log's checkpoints and tiles (exit 2 on an alert)
//
// The server is -server or TAKEDOWN_SERVER (default http://127.0.0.1:8080); the token is
// TAKEDOWN_TOKEN, else the file `login` wrote (~/.config/takedown/token).
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/takedown/takedown/internal/measure"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h: the usage was asked for and printed
		}
		fmt.Fprintln(os.Stderr, "takedown:", err)
		var ec *exitCode
		if errors.As(err, &ec) {
			os.Exit(ec.code)
		}
		os.Exit(1)
	}
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

// readTargets reads one target per line, or a CSV file whose header names the columns
// (kind, value, port, location, country, role, ownership, hosting_provider, registrar).
// Blank lines and lines starting with # are skipped. The server validates every target.
// withoutBOM drops the byte-order mark an editor or a spreadsheet on Windows writes at the
// start of a UTF-8 file: it is no part of the first target or header.
func withoutBOM(raw []byte) []byte { return bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) }

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
	raw = withoutBOM(raw)
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
				t["kind"] = measure.GuessKind(value)
			}
			if t["location"] == nil && location != "" {
				t["location"] = location
			}
			out = append(out, t)
		}
		return out, nil
	}
	for _, l := range lines {
		t := map[string]any{"kind": measure.GuessKind(l), "value": l}
		if location != "" {
			t["location"] = location
		}
		out = append(out, t)
	}
	return out, nil
}
