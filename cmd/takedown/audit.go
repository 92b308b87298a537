package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/takedown/takedown/audit"
)

// auditVerify implements `takedown audit verify`: offline, from an exported archive (or one
// record and its proof), a policy file and the auditor's saved state.
func auditVerify(e *env) error {
	fs, out := e.fs, e.out
	policyFile := fs.String("policy", "", "policy file (C2SP format): `log <verifier key>` (audit.vkey), `witness NAME VKEY`, `quorum NAME|none`, and optional settings")
	archive := fs.String("archive", "", "directory written by `takedownd audit export`")
	state := fs.String("state", "", "file holding the last signed checkpoint you verified, with its cosignatures; checked for consistency, then updated")
	proof := fs.String("proof", "", "a c2sp.org/tlog-proof document (with -record)")
	record := fs.String("record", "", "the record the proof is for")
	inspect := fs.Bool("inspect-halted", false, "verify an archive of a halted log (exported with a standing halt) as far as it goes, reporting the halt instead of failing on it; the state is not updated")
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
	var prior *audit.Checkpoint
	var priorNote []byte
	if *state != "" {
		if b, err := audit.ReadFile(*state, audit.MaxSmallFile); err == nil {
			c, err := audit.ReadState(b, pol)
			if err != nil {
				return fmt.Errorf("state %s: %w", *state, err)
			}
			prior, priorNote = &c, b
		} else if !os.IsNotExist(err) {
			return err
		}
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
		// A proof carries no consistency proof: against the saved state it can show a fork
		// at the same size, no more.
		if prior != nil {
			switch {
			case prior.Size == ck.Size && prior.Root != ck.Root:
				_, _, ckNote, _ := audit.ParseProof(doc)
				fmt.Fprintf(out, "FAIL fork: the proof's checkpoint and your saved one both have size %d, with different roots\n", ck.Size)
				printFork(out, *state, priorNote, "the proof's checkpoint", ckNote)
				return errors.New("verification failed")
			case prior.Size != ck.Size:
				fmt.Fprintf(out, "note: the proof's checkpoint has size %d, your saved one %d; a proof carries no consistency proof, so verify an archive to check that one extends the other\n", ck.Size, prior.Size)
			}
		}
		fmt.Fprintf(out, "OK: the record is entry %d of %s at size %d\n", index, ck.Origin, ck.Size)
		return nil
	}
	if *archive == "" {
		return errors.New("give -archive DIR, or -proof FILE with -record FILE")
	}
	rep, err := audit.VerifyArchive(*archive, pol, prior)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "log %s: checkpoint size %d, root %s\n", rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Checkpoint.Root)
	fmt.Fprintf(out, "%d records, %d measures replayed, %d decisions personally signed (each checked against the key the log registered)\n", rep.Records, rep.Measures, rep.Signed)
	if len(rep.Roots) > 0 {
		// Signatures with these keys rest on an unsigned approval: the auditor asks the holders.
		fmt.Fprintf(out, "%d keys registered by an approval no administrator signed; confirm them with their holders:\n", len(rep.Roots))
		for _, k := range rep.Roots {
			fmt.Fprintf(out, "  entry %d: %s of %s, approved by %s\n", k.Index, k.Key, k.User, k.ApprovedBy)
		}
	}
	if prior != nil {
		fmt.Fprintf(out, "previous checkpoint: size %d\n", prior.Size)
	}
	for _, r := range rep.Restarts {
		lost := fmt.Sprintf("it records a witness's refusal naming a tree of size %d this log does not extend (a fork)", r.Witnessed)
		if r.Witnessed > r.PreviousSize {
			lost = fmt.Sprintf("it records a witness's refusal naming size %d: entries %d to %d are lost (ask the witness for its checkpoint)", r.Witnessed, r.PreviousSize, r.Witnessed-1)
		}
		fmt.Fprintf(out, "restarted at entry %d: the entries before it give %s's checkpoint of size %d; %s\n", r.Index, r.PreviousOrigin, r.PreviousSize, lost)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(out, "note:", n)
	}
	halted := false
	if *inspect {
		kept := rep.Failures[:0]
		for _, f := range rep.Failures {
			if f.Rule == "halt" {
				fmt.Fprintln(out, "HALTED", f)
				halted = true
				continue
			}
			kept = append(kept, f)
		}
		rep.Failures = kept
	}
	if !rep.OK() {
		for _, f := range rep.Failures {
			fmt.Fprintln(out, "FAIL", f)
		}
		if rep.Forked() {
			printFork(out, *state, priorNote, "the archive's checkpoint", rep.Note)
		}
		return fmt.Errorf("verification failed: %d problems", len(rep.Failures))
	}
	if pol.Quorum != "none" {
		fmt.Fprintf(out, "witnesses: quorum %q met\n", pol.Quorum)
	}
	fmt.Fprintln(out, "OK: signature, every entry, the tree, consistency and the process rules")
	if halted {
		fmt.Fprintln(out, "but the log was halted when it was exported: the state is not updated")
		return nil
	}
	if *state != "" {
		if err := writeState(*state, rep.Note); err != nil {
			return fmt.Errorf("save state: %w", err)
		}
	}
	return nil
}

// printFork shows the two signed checkpoints that contradict each other. Each carries the log's
// signature (and any cosignatures), so anyone can check that the log signed both: the
// evidence of a fork, to hand to whoever oversees the log.
func printFork(out io.Writer, statePath string, saved []byte, what string, got []byte) {
	fmt.Fprintf(out, "\nThe log signed two checkpoints that cannot both be true. Both are below, as signed; keep them.\n")
	fmt.Fprintf(out, "--- your saved checkpoint (%s) ---\n%s", statePath, saved)
	fmt.Fprintf(out, "--- %s ---\n%s", what, got)
}

// writeState saves the signed checkpoint atomically: a crash leaves the old state or the new.
func writeState(path string, signed []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, signed, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
