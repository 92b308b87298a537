// Command mutants summarises gremlins' JSON results per file: killed, lived, not covered,
// timed out, and the efficacy and mutant coverage of each, as scripts/mutate prints them.
//
//	go run ./scripts/mutants /tmp/takedown-mutants/*.json
package main

import (
	"encoding/json"
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

type counts struct{ killed, lived, notCovered, timedOut, other int }

func main() {
	per := map[string]*counts{}
	var lived []string
	for _, path := range os.Args[1:] {
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
		pkg := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "gremlins-"), ".json")
		for _, f := range r.Files {
			name := pkg + "/" + f.Name
			c := per[name]
			if c == nil {
				c = &counts{}
				per[name] = c
			}
			for _, m := range f.Mutations {
				switch m.Status {
				case "KILLED":
					c.killed++
				case "LIVED":
					c.lived++
					lived = append(lived, fmt.Sprintf("%s:%d:%d %s", name, m.Line, m.Column, m.Type))
				case "NOT COVERED":
					c.notCovered++
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
	fmt.Printf("%-36s %7s %6s %12s %9s %9s %9s\n", "file", "killed", "lived", "not covered", "timed out", "efficacy", "coverage")
	for _, n := range names {
		c := per[n]
		all.killed, all.lived, all.notCovered, all.timedOut = all.killed+c.killed, all.lived+c.lived, all.notCovered+c.notCovered, all.timedOut+c.timedOut
		row(n, c)
	}
	row("all", &all)
	if len(lived) > 0 {
		fmt.Println("\nlived (a test a person would recognise should kill each, or it is listed as equivalent):")
		for _, l := range lived {
			fmt.Println("  " + l)
		}
	}
}

func row(name string, c *counts) {
	// A timed-out mutant counts as killed: the tests did not pass with it.
	k := c.killed + c.timedOut
	eff, cov := "-", "-"
	if k+c.lived > 0 {
		eff = fmt.Sprintf("%.1f%%", 100*float64(k)/float64(k+c.lived))
	}
	if t := k + c.lived + c.notCovered; t > 0 {
		cov = fmt.Sprintf("%.1f%%", 100*float64(k+c.lived)/float64(t))
	}
	fmt.Printf("%-36s %7d %6d %12d %9d %9s %9s\n", name, c.killed, c.lived, c.notCovered, c.timedOut, eff, cov)
}
