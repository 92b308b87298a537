// Package litewitness runs filippo.io/torchwood's litewitness, a witness written by others, as
// a process of its own for tests. It imports nothing of takedown, so the audit package's tests
// stay small.
package litewitness

import (
	"crypto/ed25519"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/crypto/ssh"
)

// Witness is filippo.io/torchwood's litewitness, a witness written by others, running as a
// process of its own with its key in a dedicated ssh-agent, as its README sets it up.
type Witness struct {
	Name string // its name, as its cosignatures carry it
	Addr string // host:port it listens on
	VKey string // its cosignature/v1 verifier key
	logs *syncBuffer
}

// Spec is the witness as -witness takes it: "URL VKEY".
func (w *Witness) Spec() string { return "http://" + w.Addr + " " + w.VKey }

// Log is what the process has written.
func (w *Witness) Log() string { return w.logs.String() }

// Start builds litewitness and witnessctl, registers the log named origin with its
// verifier key vkey, and runs the witness until the test ends. It skips the test where the
// ssh tools are missing (Debian: openssh-client).
func Start(t testing.TB, name, origin, vkey string) *Witness {
	t.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: openssh-client)", tool)
		}
	}
	dir := t.TempDir()
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: litewitness is built from source")
	}
	for _, c := range []string{"litewitness", "witnessctl"} {
		run(nil, goBin, "build", "-o", filepath.Join(dir, c), "filippo.io/torchwood/cmd/"+c)
	}
	keyFile := filepath.Join(dir, "witness")
	run(nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "litewitness", "-f", keyFile)
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	waitUntil(t, func() bool { _, err := os.Stat(sock); return err == nil })
	run([]string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", keyFile)
	fp := strings.Fields(run(nil, "ssh-keygen", "-l", "-E", "sha256", "-f", keyFile+".pub"))[1]
	// The witness's verifier key, from the same key, as an auditor would be given it.
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := torchwood.NewCosignatureSigner(name, *k.(*ed25519.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	wdb := filepath.Join(dir, "w.db")
	run(nil, filepath.Join(dir, "witnessctl"), "add-log", "-db", wdb, "-origin", origin)
	run(nil, filepath.Join(dir, "witnessctl"), "add-key", "-db", wdb, "-origin", origin, "-key", vkey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w := &Witness{Name: name, Addr: addr, VKey: cs.Verifier().String(), logs: &syncBuffer{}}
	lw := exec.Command(filepath.Join(dir, "litewitness"), "-db", wdb, "-name", name, "-key", fp, "-ssh-agent", sock, "-listen", addr)
	lw.Stdout, lw.Stderr = w.logs, w.logs
	if err := lw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lw.Process.Kill(); lw.Wait() })
	waitUntil(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return w
}

func waitUntil(t testing.TB, ok func() bool) {
	t.Helper()
	for range 200 {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("timed out")
}

// syncBuffer is a process's output, written and read from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
