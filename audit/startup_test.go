package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/takedown/takedown/audit"
)

// TestStartupCheckHoldsUntilTheWitnessesAnswer: a sequencer that takes the lead marks the
// database as being checked before it re-checks the log and asks its witnesses, and nothing
// may be accepted (Blocked) until both have answered. A witness that has cosigned a longer
// tree than this database holds (a restored dump) halts the log before the check ends, so no
// moment passes in which a rolled-back server accepts anything.
func TestStartupCheckHoldsUntilTheWitnessesAnswer(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	appendN(t, db, 0, 20, 10)
	drain(t, seq)
	logV, _ := note.NewVerifier(vkey)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := torchwood.NewCosignatureSigner("witness.test", priv)
	if err != nil {
		t.Fatal(err)
	}
	// The witness saw this log at 50 entries, before the database was restored to 20; it
	// answers only once released, so the test sees the check while it runs.
	tw := &testWitness{logKey: logV, signer: signer, size: 50}
	release := make(chan struct{})
	asked := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		<-release
		tw.ServeHTTP(w, r)
	}))
	defer srv.Close()
	wit, err := audit.ParseWitness(srv.URL + " " + signer.Verifier().String())
	if err != nil {
		t.Fatal(err)
	}
	restarted := &audit.Sequencer{DB: db, Signer: seq.Signer, VerifierKeys: seq.VerifierKeys, Origin: seq.Origin, Appender: seq.Appender, Log: seq.Log,
		Witnessing: &audit.Witnessing{DB: db, Witnesses: []*audit.Witness{wit}, Log: seq.Log}}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = restarted.Run(runCtx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("the restarted sequencer never asked its witness")
	}
	select {
	case <-restarted.Ready():
		t.Fatal("ready before the witness answered")
	default:
	}
	blocked, err := audit.Blocked(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(blocked, []string{audit.StartupCheck}) {
		t.Fatalf("while the witness is asked, Blocked = %q; want only the start-up check", blocked)
	}
	close(release)
	select {
	case <-restarted.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("never ready after the witness answered")
	}
	blocked, err = audit.Blocked(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocked) != 1 || !strings.Contains(blocked[0], "rolled back or forked") {
		t.Fatalf("after the witness said it cosigned 50 entries of a 20-entry log, Blocked = %q; want its halt alone", blocked)
	}
	if checking, err := audit.Checking(ctx, db); err != nil || checking {
		t.Fatalf("the check has ended, yet checking = %v (%v)", checking, err)
	}
}

// TestStartupCheckStandsWhenTheLeaderDies: a leader that dies during its check leaves the
// mark, and nothing is accepted until the next leader has checked.
func TestStartupCheckStandsWhenTheLeaderDies(t *testing.T) {
	ctx := context.Background()
	db, seq, _ := newLog(t)
	appendN(t, db, 0, 5, 5)
	drain(t, seq)
	if _, err := db.Exec(ctx, `UPDATE audit_signing SET checking = true`); err != nil { // as a leader killed mid-check leaves it
		t.Fatal(err)
	}
	if blocked, err := audit.Blocked(ctx, db); err != nil || !slices.Equal(blocked, []string{audit.StartupCheck}) {
		t.Fatalf("after a leader died mid-check, Blocked = %q (%v)", blocked, err)
	}
	next := &audit.Sequencer{DB: db, Signer: seq.Signer, VerifierKeys: seq.VerifierKeys, Origin: seq.Origin, Appender: seq.Appender, Log: seq.Log}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = next.Run(runCtx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-next.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("the next leader never finished its check")
	}
	if blocked, err := audit.Blocked(ctx, db); err != nil || len(blocked) != 0 {
		t.Fatalf("after the next leader checked, Blocked = %q (%v)", blocked, err)
	}
}

// TestStartupCheckWaitsForAWitnessOutOfReach: a witness that cannot be reached has not
// answered: the mark stands and nothing is signed until it answers (an operator who blocks the
// witness cannot serve a restored dump meanwhile). Marked again, as clear-halt does, the
// leader checks afresh before signing anything more.
func TestStartupCheckWaitsForAWitnessOutOfReach(t *testing.T) {
	t.Parallel() // waits on its own processes and databases more than it computes
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	appendN(t, db, 0, 10, 10)
	drain(t, seq)
	logV, _ := note.NewVerifier(vkey)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := torchwood.NewCosignatureSigner("witness.test", priv)
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{logKey: logV, signer: signer}
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		tw.ServeHTTP(w, r)
	}))
	defer srv.Close()
	wit, err := audit.ParseWitness(srv.URL + " " + signer.Verifier().String())
	if err != nil {
		t.Fatal(err)
	}
	leader := &audit.Sequencer{DB: db, Signer: seq.Signer, VerifierKeys: seq.VerifierKeys, Origin: seq.Origin, Appender: seq.Appender, Log: seq.Log,
		Witnessing: &audit.Witnessing{DB: db, Witnesses: []*audit.Witness{wit}, Log: seq.Log}}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = leader.Run(runCtx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	signed := func() int64 {
		_, ck, err := audit.Latest(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		return ck.Size
	}
	appendN(t, db, 10, 5, 5)
	time.Sleep(3 * time.Second)
	select {
	case <-leader.Ready():
		t.Fatal("ready while the witness is out of reach")
	default:
	}
	if blocked, err := audit.Blocked(ctx, db); err != nil || !slices.Equal(blocked, []string{audit.StartupCheck}) {
		t.Fatalf("while the witness is out of reach, Blocked = %q (%v)", blocked, err)
	}
	if n := signed(); n != 10 {
		t.Fatalf("signed up to %d while the witness was out of reach", n)
	}
	up.Store(true)
	select {
	case <-leader.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("never ready after the witness came back")
	}
	for start := time.Now(); signed() != 15; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the waiting entries were not signed after the check: size %d", signed())
		}
	}
	// The witness goes down; a checkpoint it has not seen is signed meanwhile (it is asked again
	// in the background). Marked again (an operator cleared a halt), nothing more is signed
	// until the witness has answered about that checkpoint.
	up.Store(false)
	appendN(t, db, 15, 5, 5)
	for start := time.Now(); signed() != 20; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("not signed while the witness was down: size %d", signed())
		}
	}
	if _, err := db.Exec(ctx, `UPDATE audit_signing SET checking = true`); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 20, 5, 5)
	time.Sleep(3 * time.Second)
	if n := signed(); n != 20 {
		t.Fatalf("signed up to %d while the log was marked for checking and the witness was out of reach", n)
	}
	up.Store(true)
	for start := time.Now(); signed() != 25; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("not signed after the witness answered the new check: size %d", signed())
		}
	}
	if checking, err := audit.Checking(ctx, db); err != nil || checking {
		t.Fatalf("the check has ended, yet checking = %v (%v)", checking, err)
	}
}

// TestLeaderWhoseLockIsCutStopsSigning: when the leading sequencer's lock connection is cut
// (pg_terminate_backend, a network fault), another replica takes the lead; the first must
// sign nothing more, so the log has one history with every entry exactly once.
func TestLeaderWhoseLockIsCutStopsSigning(t *testing.T) {
	db, seq, vkey := newLog(t)
	// Both sequencers keep logging after the test reads: the buffers are read under their lock.
	logs1 := &lockedLog{}
	seq.Log = slog.New(slog.NewTextHandler(logs1, nil))
	seq.Interval = 20 * time.Millisecond
	logs2 := &lockedLog{}
	seq2 := &audit.Sequencer{DB: db, Signer: seq.Signer, Origin: seq.Origin, Appender: seq.Appender, Interval: seq.Interval,
		Log: slog.New(slog.NewTextHandler(logs2, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go seq.Run(ctx)
	<-seq.Ready()
	go seq2.Run(ctx)
	appendN(t, db, 0, 20, 5)
	holder := func() (pid int64) {
		// pg_locks is the whole server's: this database's lock only, not another test's.
		_ = db.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1`).Scan(&pid)
		return pid
	}
	first := holder()
	if first == 0 {
		t.Fatal("no replica holds the sequencer lock")
	}
	if _, err := db.Exec(ctx, `SELECT pg_terminate_backend($1)`, first); err != nil {
		t.Fatal(err)
	}
	// Both keep running: entries keep coming while the lead changes hands.
	for i := 1; i <= 10; i++ {
		appendN(t, db, i*20, 20, 5)
		time.Sleep(30 * time.Millisecond)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ck, err := audit.Trust(ctx, db, []string{vkey}); err == nil && ck.Size == 220 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the log did not reach 220 entries: %v, %v", ck.Size, err)
		}
	}
	both := logs1.String() + logs2.String()
	if strings.Contains(both, "duplicate key") {
		t.Fatalf("two replicas signed at once:\n%s", both)
	}
	if !strings.Contains(logs1.String(), "lock was lost") {
		t.Fatalf("the first leader did not notice it lost the lock:\n%s", logs1.String())
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
