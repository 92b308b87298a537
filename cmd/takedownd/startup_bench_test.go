package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/devenv"
	"github.com/takedown/takedown/internal/testdb"
)

// BenchmarkDevStartup measures the time from starting `takedownd dev` (built beforehand) to
// the first 200 from /healthz, on a fresh data directory and on a restart over an existing one.
// The baseline is the embedded Temporal server alone, started in-process on a fresh file in
// the same run.
func BenchmarkDevStartup(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "takedownd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	var fresh, restart, temporalOnly time.Duration
	for i := range b.N {
		db := testdb.New(b)
		data := filepath.Join(dir, "data", string(rune('a'+i%26)), time.Now().Format("150405.000000"))
		addr := freeAddr(b)
		for round := range 2 {
			srv, _ := startDev(b, bin, data, db, addr)
			d := srv.started
			if round == 0 {
				fresh += d
			} else {
				restart += d
			}
			srv.cmd.Process.Signal(syscall.SIGINT)
			srv.cmd.Wait()
		}
		start := time.Now()
		tmp, err := devenv.StartTemporal(context.Background(), devenv.TemporalOptions{DBFile: filepath.Join(dir, "alone", time.Now().Format("150405.000000"), "t.db"), LogLevel: "off"})
		if err != nil {
			b.Fatal(err)
		}
		temporalOnly += time.Since(start)
		tmp.Stop()
	}
	n := float64(b.N)
	b.ReportMetric(fresh.Seconds()/n, "s-fresh")
	b.ReportMetric(restart.Seconds()/n, "s-restart")
	b.ReportMetric(temporalOnly.Seconds()/n, "s-temporal-alone")
	b.ReportMetric(fresh.Seconds()/temporalOnly.Seconds(), "fresh/temporal-alone")
}
