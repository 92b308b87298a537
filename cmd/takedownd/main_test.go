package main

import (
	"testing"

	"github.com/takedown/takedown/internal/testenv"
)

// TestMain stops the tests' Temporal server once the tests have run, which drops its databases.
func TestMain(m *testing.M) { testenv.Main(m) }
