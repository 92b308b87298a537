package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/takedown/takedown/audit"
)

// auditVerify implements `takedown audit verify`: offline, from an exported archive (or one
// record and its proof), a policy file and the auditor's saved state.
func auditVerify(e *env) error {
	fs, out := e.fs, e.out
	policyFile := fs.String("policy", "", "policy file: `log <verifier key>` (audit.vkey) and optional settings")
	archive := fs.String("archive", "", "directory written by `takedownd audit export`")
	state := fs.String("state", "", "file holding the last checkpoint you verified; checked for consistency, then updated")
	proof := fs.String("proof", "", "a c2sp.org/tlog-proof document (with -record)")
	record := fs.String("record", "", "the record the proof is for")
	if err := e.parse(); err != nil {
		return err
	}
	raw, err := audit.ReadFile(*policyFile, audit.MaxSmallFile)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	pol, err := audit.ParsePolicy(string(raw))
	if err != nil {
		return err
	}
	if *proof != "" {
		doc, err := audit.ReadFile(*proof, audit.MaxSmallFile)
		if err != nil {
			return err
		}
		rec, err := audit.ReadFile(*record, audit.MaxSmallFile)
		if err != nil {
			return err
		}
		ck, index, err := audit.VerifyProof(doc, rec, pol)
		if err != nil {
			fmt.Fprintf(out, "FAIL index %d: %v\n", index, err)
			return errors.New("verification failed")
		}
		fmt.Fprintf(out, "OK: the record is entry %d of %s at size %d\n", index, ck.Origin, ck.Size)
		return nil
	}
	if *archive == "" {
		return errors.New("give -archive DIR, or -proof FILE with -record FILE")
	}
	var prior *audit.Checkpoint
	if *state != "" {
		if b, err := audit.ReadFile(*state, audit.MaxSmallFile); err == nil {
			c, err := audit.ParseCheckpoint(string(b))
			if err != nil {
				return fmt.Errorf("state %s: %w", *state, err)
			}
			prior = &c
		} else if !os.IsNotExist(err) {
			return err
		}
	}
	rep, err := audit.VerifyArchive(*archive, pol, prior)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "log %s: checkpoint size %d, root %s\n", rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Checkpoint.Root)
	fmt.Fprintf(out, "%d records, %d measures replayed\n", rep.Records, rep.Measures)
	if prior != nil {
		fmt.Fprintf(out, "previous checkpoint: size %d\n", prior.Size)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(out, "note:", n)
	}
	if !rep.OK() {
		for _, f := range rep.Failures {
			fmt.Fprintln(out, "FAIL", f)
		}
		return fmt.Errorf("verification failed: %d problems", len(rep.Failures))
	}
	fmt.Fprintln(out, "OK: signature, every entry, the tree, consistency and the process rules")
	if *state != "" {
		if err := os.WriteFile(*state, []byte(rep.Checkpoint.Text()), 0o600); err != nil {
			return fmt.Errorf("save state: %w", err)
		}
	}
	return nil
}
