// Command mutants summarises gremlins' JSON results per file: killed, lived, not covered,
// timed out, and the efficacy and mutant coverage of each, as scripts/mutate prints them.
// A surviving mutant listed in the -equivalent file (one that cannot change what the code
// does, with the reason) counts as equivalent, not lived. The file's lines are
//
//	path/to/file.go | MUTATION_TYPE | the source line, trimmed | why it cannot matter
//
// matched by file, type and the line's text, so they hold when the file moves around them. A
// mutant no test of its package runs may be listed the same way, the reason naming where the
// rule is tested instead.
//
// With -gate it exits 1 when a mutant lived or went uncovered (outside a switch's case
// expressions, which gremlins cannot run) without a listed reason: what .ci/run holds each
// change of the rule code to.
//
//	go run ./scripts/mutants -equivalent scripts/mutants/equivalent.txt /tmp/takedown-mutants/*.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type result struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

type counts struct{ killed, lived, equivalent, notCovered, inCase, timedOut, other int }

// readEquivalent reads the list of equivalent mutants, keyed "file|TYPE|line".
func readEquivalent(path string) (map[string]bool, error) {
	eq := map[string]bool{}
	if path == "" {
		return eq, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for n, line := range strings.Split(string(raw), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, " | ", 4)
		if len(f) != 4 || strings.TrimSpace(f[3]) == "" {
			return nil, fmt.Errorf("%s:%d: want file | TYPE | source line | reason", path, n+1)
		}
		eq[strings.TrimSpace(f[0])+"|"+strings.TrimSpace(f[1])+"|"+strings.TrimSpace(f[2])] = true
	}
	return eq, nil
}

// sourceLine returns line n of a file, trimmed, or "".
func sourceLine(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(raw), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimSpace(lines[n-1])
}

func main() {
	eqPath := flag.String("equivalent", "", "a list of equivalent mutants")
	gate := flag.Bool("gate", false, "exit 1 when a mutant lived or went uncovered without a listed reason")
	flag.Parse()
	eq, err := readEquivalent(*eqPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	per := map[string]*counts{}
	var lived, uncovered []string
	for _, path := range flag.Args() {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var r result
		if err := json.Unmarshal(raw, &r); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
		// gremlins-<package dir with / as +>.json, as scripts/mutate names them
		pkg := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "gremlins-"), ".json"), "+", "/")
		for _, f := range r.Files {
			name := pkg + "/" + f.Name
			c := per[name]
			if c == nil {
				c = &counts{}
				per[name] = c
			}
			for _, m := range f.Mutations {
				src := sourceLine(name, m.Line)
				where := fmt.Sprintf("%s:%d:%d %s | %s", name, m.Line, m.Column, m.Type, src)
				listed := eq[name+"|"+m.Type+"|"+src]
				switch m.Status {
				case "KILLED":
					c.killed++
				case "LIVED":
					if listed {
						c.equivalent++
						continue
					}
					c.lived++
					lived = append(lived, where)
				case "NOT COVERED":
					if listed {
						c.equivalent++
						continue
					}
					c.notCovered++
					if strings.HasPrefix(src, "case ") {
						c.inCase++ // Go's coverage leaves case expressions out of its blocks
						continue
					}
					uncovered = append(uncovered, where)
				case "TIMED OUT":
					c.timedOut++
				default:
					c.other++
				}
			}
		}
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	var all counts
	fmt.Printf("%-36s %7s %6s %11s %12s %8s %9s %9s %9s\n", "file", "killed", "lived", "equivalent", "not covered", "(case)", "timed out", "efficacy", "coverage")
	for _, n := range names {
		c := per[n]
		all.killed, all.lived, all.equivalent = all.killed+c.killed, all.lived+c.lived, all.equivalent+c.equivalent
		all.notCovered, all.inCase, all.timedOut = all.notCovered+c.notCovered, all.inCase+c.inCase, all.timedOut+c.timedOut
		row(n, c)
	}
	row("all", &all)
	for _, l := range []struct {
		title string
		list  []string
	}{
		{"lived (a test a person would recognise should kill each, or it is listed as equivalent):", lived},
		{"not covered by the package's tests (outside case expressions):", uncovered},
	} {
		if len(l.list) > 0 {
			fmt.Println("\n" + l.title)
			for _, x := range l.list {
				fmt.Println("  " + x)
			}
		}
	}
	if *gate && len(lived)+len(uncovered) > 0 {
		fmt.Printf("\nmutants: %d lived and %d went uncovered without a reason listed in %s\n", len(lived), len(uncovered), *eqPath)
		os.Exit(1)
	}
}

func row(name string, c *counts) {
	// A timed-out mutant counts as killed: the tests did not pass with it; an equivalent one
	// is out of both figures, as no test could kill it.
	k := c.killed + c.timedOut
	eff, cov := "-", "-"
	if k+c.lived > 0 {
		eff = fmt.Sprintf("%.1f%%", 100*float64(k)/float64(k+c.lived))
	}
	if t := k + c.lived + c.notCovered; t > 0 {
		cov = fmt.Sprintf("%.1f%%", 100*float64(k+c.lived)/float64(t))
	}
	fmt.Printf("%-36s %7d %6d %11d %12d %8d %9d %9s %9s\n", name, c.killed, c.lived, c.equivalent, c.notCovered, c.inCase, c.timedOut, eff, cov)
}
