package testenv

import (
	"log"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/takedown/takedown/workflows"
)

// One server per test binary, for the tests that only open cases and measures of their own and
// read them back: starting a server (a database, migrations, an in-process Temporal server, the
// sequencer) costs seconds under the race detector, paid once instead of by each test. A test
// that edits tables as an insider, halts the log, changes the policy, keys or accounts, counts
// what the whole server holds, or needs other durations keeps a server of its own (Start).
var shared struct {
	once sync.Once
	env  *Env
	keep *keeper
}

// Shared returns the test binary's shared server (DefaultConfig), starting it on first use.
// The package's TestMain must call Main, which closes it.
func Shared(t testing.TB) *Env {
	t.Helper()
	shared.once.Do(func() {
		shared.keep = &keeper{TB: t}
		shared.env = StartWith(shared.keep, workflows.DefaultConfig(), nil)
	})
	if shared.env == nil {
		t.Fatal("the shared server did not start: see the first test that asked for it")
	}
	showOnFailure(t, shared.env.logged)
	return shared.env
}

// Main runs the package's tests, then the funcs given, then closes the shared server and
// the test binary's Temporal server (whose databases it drops). Every package whose tests
// start takedownd has its TestMain call it.
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	if k := shared.keep; k != nil {
		k.close()
	}
	stopTemporal()
	os.Exit(code)
}

// keeper is the testing.TB a shared server is started with: it reports a failure to start
// through the first test that asked, and keeps the server's cleanups until Main runs them.
type keeper struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (k *keeper) Cleanup(f func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cleanups = append(k.cleanups, f)
}

// Failed is false: each test reports its own failure (Shared shows the server's log then).
func (k *keeper) Failed() bool { return false }

// Logf writes to the process's log: the test that started the server may have ended.
func (k *keeper) Logf(format string, args ...any) { log.Printf(format, args...) }

func (k *keeper) close() {
	k.mu.Lock()
	fs := slices.Clone(k.cleanups)
	k.mu.Unlock()
	slices.Reverse(fs)
	for _, f := range fs {
		f()
	}
}
