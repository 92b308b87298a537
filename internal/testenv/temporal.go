package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/takedown/takedown/internal/devenv"
	"github.com/takedown/takedown/workflows"
)

// pooled is how many namespaces the test binary's Temporal server is created with; a server
// started after they are taken registers one more, which takes a namespace cache refresh.
const pooled = 128

// temporal is the test binary's embedded Temporal server, started on first use and stopped by
// Main. Servers of different tests stay apart in namespaces of their own.
var temporal struct {
	once sync.Once
	srv  *devenv.Temporal
	err  error
	mu   sync.Mutex
	next int
}

// temporalNamespace returns the address of the test binary's Temporal server and a namespace
// no other server of this binary has used.
func temporalNamespace(t testing.TB) (hostPort, namespace string) {
	t.Helper()
	temporal.once.Do(func() {
		names := make([]string, pooled)
		for i := range names {
			names[i] = fmt.Sprintf("test-%d", i+1)
		}
		temporal.srv, temporal.err = devenv.StartTemporal(context.Background(), devenv.TemporalOptions{LogLevel: "off",
			SearchAttributes: workflows.SearchAttributes(), Namespaces: names, NoSystemWorkers: true})
	})
	if temporal.err != nil {
		t.Fatalf("start the tests' Temporal server: %v", temporal.err)
	}
	temporal.mu.Lock()
	defer temporal.mu.Unlock()
	temporal.next++
	return temporal.srv.HostPort, fmt.Sprintf("test-%d", temporal.next)
}

// stopTemporal stops the test binary's Temporal server if it was started.
func stopTemporal() {
	if temporal.srv != nil {
		_ = temporal.srv.Stop()
	}
}
