// Command takedownd is takedown's server.
//
//	takedownd dev      everything in one process: an embedded Temporal server (state under
//	                   -data-dir), PostgreSQL (DATABASE_URL, else 127.0.0.1:5432, else a private
//	                   cluster), migrations, demo users, worker, UI and API on -http
//	takedownd serve    UI and API against an external Temporal cluster and PostgreSQL
//	takedownd worker   workflow and activity worker against the same
//	takedownd migrate  apply the schema's migrations and exit (-app-role: grant the serving role)
//	takedownd temporal-setup  register the Temporal namespace and search attributes
//	takedownd bootstrap -org O -org-name N -admin U -name "…"   one of the first two administrators
//	takedownd keygen   make an audit checkpoint signing key (-append: an entry authenticator
//	                   key; -payload: the key file sealing Temporal payloads)
//	takedownd audit export -out DIR   write the audit log for offline verification
//	takedownd audit reconcile         name every row where the domain tables and the log differ
//
// Run `takedownd <command> -h` for the flags; each has an environment fallback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/demo"
	"github.com/takedown/takedown/internal/payload"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/service"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h: the usage was asked for and printed
		}
		fmt.Fprintln(os.Stderr, "takedownd:", err)
		os.Exit(1)
	}
}

const usage = `usage: takedownd <command> [flags]

commands:
  dev       run everything in one process on the embedded default
  serve     run the UI and API against external Temporal and PostgreSQL
  worker    run the workflow worker against external Temporal and PostgreSQL
  migrate   apply database migrations as the tables' owner and exit; -app-role R grants R
            what serve and worker need (it may only add to the audit log)
  temporal-setup [-retention D]: register the Temporal namespace and the search attributes
            the workflows keep (where this account may; else it prints the commands)
  bootstrap -org O -org-name N -admin U -name N: create one of the first two administrators
            (prints their one-time enrolment code); refused once two exist
  keygen    -out FILE: make an audit checkpoint signing key (prints the verifier key);
            with -append, the key that authenticates audit entries (serve and worker share it);
            with -payload, the key file that seals Temporal payloads (again on the file: add a
            key; then -payload -promote: it seals; restart serve and worker after each step)
  audit export -out DIR: write the audit log (checkpoint, tiles, entries) for auditors
  audit stream [-from N] [-out FILE] [-follow]: write the signed log's records as JSON lines
            (one {"index","record"} each) for a SIEM; -out appends to FILE and resumes after
            its last line, so a stream stopped at any point writes each record once
  audit halts: list the standing halts of the audit log (while one stands nothing is signed
            and every action is refused)
  audit clear-halt -id N -reason TEXT: clear a halt after investigating it, as the tables'
            owner; recorded in the log with the reason
  audit restart-log -signing-key NEW.key -log-origin NEW -previous-vkey OLD.vkey -reason TEXT
            [-witnessed-size N]: after a restore the witnesses saw past, go on under a new
            origin whose first entry holds the old origin's last checkpoint and the range lost
  audit reconcile [-policy FILE]: check the database's log against its signature, then compare
            the domain tables with it and name every row on which they differ (exit 1 if any)
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errors.New("no command")
		}
		return nil
	}
	cmd := args[0]
	if cmd == "audit" && len(args) > 1 {
		cmd, args = "audit "+args[1], args[1:]
	}
	if _, known := commandFlags[cmd]; !known {
		// Before the flags: `takedownd nosuch -h` must not read as a command's help.
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("takedownd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg daemon.Config
	cfg.Flags(fs)
	outPath := fs.String("out", "", "keygen: key file to write; audit export: directory to write; audit stream: the file of JSON lines to append to (default: standard output)")
	streamFrom := fs.Int64("from", 0, "audit stream: the log index to start from (with -out, only for a new file: an existing one resumes after its last line)")
	follow := fs.Bool("follow", false, "audit stream: after the signed log's end, wait for new records and write them as they are signed, until stopped")
	poll := fs.Duration("poll", time.Second, "audit stream -follow: how often to look for a new checkpoint")
	appRole := fs.String("app-role", os.Getenv("TAKEDOWN_APP_ROLE"), "migrate: the role serve and worker connect as, granted read and append-only rights on the audit log (TAKEDOWN_APP_ROLE)")
	policyPath := fs.String("policy", "", "audit reconcile: the auditor's policy file, whose log keys the database's log must be signed with (default: the key history in the database)")
	appendKey := fs.Bool("append", false, "keygen: make the key that authenticates audit entries instead of a checkpoint signing key")
	payloadKey := fs.Bool("payload", false, "keygen: make the key file that seals Temporal payloads; on an existing file, add a key that opens them (rotation, step 1)")
	promote := fs.Bool("promote", false, "keygen -payload: make the key added last the one that seals (rotation, step 2)")
	bootOrg := fs.String("org", "", "bootstrap: the administrator's organisation ID (created if new)")
	bootOrgName := fs.String("org-name", "", "bootstrap: the organisation's name, if it is new")
	bootAdmin := fs.String("admin", "", "bootstrap: the administrator's username")
	bootName := fs.String("name", "", "bootstrap: the administrator's display name")
	retention := fs.Duration("retention", daemon.DefaultRetention, "temporal-setup: how long Temporal keeps a closed measure's history, for a namespace it registers")
	haltID := fs.Int64("id", 0, "audit clear-halt: the halt to clear (takedownd audit halts lists them)")
	haltReason := fs.String("reason", "", "audit clear-halt: what the investigation found; audit restart-log: the restore and its cause; recorded in the log")
	previousVkey := fs.String("previous-vkey", "", "audit restart-log: the previous log's verifier key file (audit.vkey), whose signature the restored log must carry")
	witnessed := fs.Int64("witnessed-size", 0, "audit restart-log: the size the witness's standing refusal names (takedownd audit halts), to confirm it; left out, it is taken from the refusal; entries from the restored size up to it are recorded as lost")
	commandUsage(fs, cmd)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := checkFlags(fs, cmd); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// An unquoted reason of several words would otherwise be cut to its first.
		return fmt.Errorf("%s takes no arguments after its flags, got %q (quote a value with spaces)", cmd, strings.Join(fs.Args(), " "))
	}
	log, err := daemon.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var mode daemon.Mode
	switch cmd {
	case "dev":
		mode = daemon.Dev
	case "serve":
		mode = daemon.Serve
	case "worker":
		mode = daemon.Worker
	case "migrate":
		if cfg.DatabaseURL == "" {
			return errors.New("migrate needs -database-url or DATABASE_URL")
		}
		var roles []string
		if *appRole != "" {
			roles = append(roles, *appRole)
		}
		if err := daemon.Migrate(ctx, cfg.DatabaseURL, roles...); err != nil {
			return err
		}
		log.Info("migrations applied", "app_role", *appRole)
		return nil
	case "temporal-setup":
		if err := daemon.TemporalSetup(ctx, cfg, *retention, log); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Temporal namespace %s at %s is ready: registered, with the search attributes takedown keeps\n", cfg.Namespace, cfg.TemporalAddress)
		return nil
	case "bootstrap":
		if cfg.DatabaseURL == "" {
			return errors.New("bootstrap needs -database-url or DATABASE_URL")
		}
		if err := daemon.CheckSchema(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
		db, err := pgxpool.New(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer db.Close()
		app, err := daemon.LoadAppender(cfg, daemon.Tool)
		if err != nil {
			return err
		}
		id, code, err := service.Bootstrap(ctx, db, app, *bootOrg, *bootOrgName, *bootAdmin, *bootName)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "administrator %s (%s) created in %s; enrolment code, shown once, valid %s:\n%s\n"+
			"set the password with: takedown enrol -user %s -code <code> -password <new password>\n",
			*bootAdmin, id, *bootOrg, service.EnrolmentTTL, code, *bootAdmin)
		return nil
	case "keygen":
		if *outPath == "" {
			return errors.New("keygen needs -out FILE")
		}
		if *appendKey && *payloadKey {
			return errors.New("keygen: -append or -payload, not both")
		}
		if *promote && !*payloadKey {
			return errors.New("keygen: -promote rotates the payload key: give it with -payload")
		}
		if *payloadKey {
			return payloadKeygen(*outPath, *promote, stdout)
		}
		if *appendKey {
			if err := audit.GenerateAppendKey(*outPath); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s (keep it secret, out of the database): give it to serve and worker as -append-key\n", *outPath)
			return nil
		}
		// The verifier key names the log: without its name, it would verify nothing.
		if cfg.LogOrigin == "" {
			return daemon.ErrNoOrigin
		}
		if err := daemon.CheckOrigin(cfg.LogOrigin); err != nil {
			return err
		}
		if err := audit.GenerateKey(*outPath); err != nil {
			return err
		}
		s, err := audit.LoadKey(*outPath)
		if err != nil {
			return err
		}
		_, vkey, err := audit.NewNoteSigner(ctx, cfg.LogOrigin, s)
		if err != nil {
			return err
		}
		vkeyPath := strings.TrimSuffix(*outPath, ".key") + ".vkey"
		if err := os.WriteFile(vkeyPath, []byte(vkey+"\n"), 0o644); err != nil {
			return fmt.Errorf("write the verifier key: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s (keep it secret) and its verifier key, for auditors' policy files, to %s:\n%s\n", *outPath, vkeyPath, vkey)
		return nil
	case "audit stream":
		if cfg.DatabaseURL == "" {
			return errors.New("audit stream needs -database-url (or DATABASE_URL)")
		}
		if *poll <= 0 {
			return fmt.Errorf("-poll %v: give how often to look, e.g. 1s", *poll)
		}
		db, err := pgxpool.New(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer db.Close()
		var next int64
		if *outPath != "" {
			next, err = audit.StreamToFile(ctx, db, *outPath, *streamFrom, *follow, *poll)
		} else {
			next, err = audit.Stream(ctx, db, *streamFrom, *follow, *poll, stdout)
		}
		if err == nil && next == *streamFrom && !*follow && *outPath == "" {
			log.Warn("nothing to stream: the signed log holds no record from that index yet", "from", *streamFrom)
		}
		log.Info("audit stream stopped", "next_index", next)
		return err
	case "audit export":
		if cfg.DatabaseURL == "" || *outPath == "" {
			return errors.New("audit export needs -database-url (or DATABASE_URL) and -out DIR")
		}
		db, err := pgxpool.New(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer db.Close()
		// Exports are custody events of the log itself: recorded before a byte is written, and
		// refused before anything is written when the entry cannot be made.
		app, err := daemon.LoadAppender(cfg, daemon.Tool)
		if err != nil {
			return err
		}
		_, newest, err := audit.Latest(ctx, db)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			return app.Append(ctx, tx, fmt.Sprintf("export/%d/%d", newest.Size, time.Now().UnixNano()), &audit.Record{
				Actor: audit.Actor{ID: operator(), Roles: []string{}, Org: "system"}, Action: "audit.exported",
				Details: map[string]any{"size": newest.Size, "root": newest.Root.String(), "to": *outPath},
			})
		})
		if err != nil {
			return fmt.Errorf("record the export: %w", err)
		}
		ck, err := audit.Export(ctx, db, *outPath)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "exported %d entries of %s to %s\n", ck.Size, ck.Origin, *outPath)
		return nil
	case "audit halts", "audit clear-halt":
		if cfg.DatabaseURL == "" {
			return fmt.Errorf("%s needs -database-url (or DATABASE_URL)", cmd)
		}
		db, err := pgxpool.New(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer db.Close()
		if cmd == "audit halts" {
			return listHalts(ctx, db, stdout)
		}
		app, err := daemon.LoadAppender(cfg, daemon.Tool)
		if err != nil {
			return err
		}
		return clearHalt(ctx, db, app, *haltID, *haltReason, operator(), stdout)
	case "audit restart-log":
		return restartLog(ctx, cfg, *previousVkey, *witnessed, *haltReason, log, stdout)
	case "audit reconcile":
		if cfg.DatabaseURL == "" {
			return errors.New("audit reconcile needs -database-url (or DATABASE_URL)")
		}
		db, err := pgxpool.New(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer db.Close()
		return reconcileLog(ctx, db, *policyPath, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}

	d, err := daemon.Start(ctx, cfg, mode, log)
	if err != nil {
		return err
	}
	defer d.Close()
	if len(d.Credentials) > 0 {
		printCredentials(stdout, d.Credentials)
		if mode == daemon.Dev && cfg.DataDir != "" {
			// For scripts and the README's walkthrough: the demo passwords, readable by this
			// user alone, in the data directory they belong to.
			if err := writeCredentials(filepath.Join(cfg.DataDir, "demo-users"), d.Credentials); err != nil {
				return err
			}
		}
	}
	if d.URL != "" {
		log.Info("takedownd ready", "mode", cmd, "url", d.URL, "openapi", d.URL+"/api/v1/openapi.json")
	} else {
		log.Info("takedownd ready", "mode", cmd)
	}
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

func printCredentials(w io.Writer, creds []demo.Credential) {
	fmt.Fprintln(w, "Demo users (passwords are shown only now; they are stored hashed):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tPASSWORD\tROLE\tORGANISATION\tUSER ID")
	for _, c := range creds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Username, c.Password, c.Role, c.Org, c.ID)
	}
	tw.Flush()
}

// writeCredentials writes "username password" lines, mode 0600.
func writeCredentials(path string, creds []demo.Credential) error {
	var b strings.Builder
	for _, c := range creds {
		fmt.Fprintf(&b, "%s %s\n", c.Username, c.Password)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write the demo passwords: %w", err)
	}
	return nil
}

// reconcileLog checks the database's log against the keys it must be signed with, then compares
// the domain tables with it.
func reconcileLog(ctx context.Context, db *pgxpool.Pool, policyPath string, stdout io.Writer) error {
	var keys []string
	if policyPath != "" {
		raw, err := audit.ReadFile(policyPath, audit.MaxSmallFile)
		if err != nil {
			return err
		}
		pol, err := audit.ParsePolicy(string(raw))
		if err != nil {
			return err
		}
		keys = pol.LogKeys
	} else {
		rows, err := db.Query(ctx, `SELECT vkey FROM audit_keys ORDER BY first_size`)
		if err != nil {
			return fmt.Errorf("read the key history: %w", err)
		}
		if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("read the key history: %w", err)
		}
	}
	ck, err := audit.Trust(ctx, db, keys)
	if err != nil {
		return fmt.Errorf("the log in the database is not what was signed: %w", err)
	}
	diffs, err := reconcile.Snapshot(ctx, db)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintln(stdout, d)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%d rows differ from the signed log", len(diffs))
	}
	fmt.Fprintf(stdout, "the domain tables agree with the %d signed entries of %s\n", ck.Size, ck.Origin)
	return nil
}

// payloadKeygen makes or rotates the payload key file.
func payloadKeygen(path string, promote bool, stdout io.Writer) error {
	if promote {
		id, err := payload.Promote(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s now seals new payloads (rotation, step 2 of 2): give %s to every serve and worker and restart them\n", id, path)
		return nil
	}
	_, err := os.Stat(path)
	rotating := err == nil
	id, err := payload.Generate(path)
	if err != nil {
		return err
	}
	if rotating {
		fmt.Fprintf(stdout, "added key %s to %s; it opens payloads but seals none yet (rotation, step 1 of 2)\n"+
			"give the file to every serve and worker and restart them, then run: takedownd keygen -payload -promote -out %s\n", id, path, path)
		return nil
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret, out of Temporal): key %s seals every payload\ngive the file to serve and worker as -payload-key\n", path, id)
	return nil
}
