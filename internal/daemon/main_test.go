package daemon_test

import (
	"flag"
	"testing"

	"github.com/takedown/takedown/internal/testenv"
)

// TestMain closes the server the package's tests share (testenv.Shared) once they have run.
// The tests marked parallel wait on Temporal and PostgreSQL more than they compute: four run
// at a time unless -test.parallel says otherwise (go test's default is one per core; on two
// cores four took the package from 228 s to 208 s under the race detector).
func TestMain(m *testing.M) {
	flag.Parse()
	if !flagSet("test.parallel") {
		_ = flag.Set("test.parallel", "4")
	}
	testenv.Main(m)
}
