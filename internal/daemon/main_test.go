package daemon_test

import (
	"testing"

	"github.com/takedown/takedown/internal/testenv"
)

// TestMain closes the server the package's tests share (testenv.Shared) once they have run.
func TestMain(m *testing.M) { testenv.Main(m) }
