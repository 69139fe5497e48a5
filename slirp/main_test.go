//go:build linux

package slirp

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary play the sandy binary's hidden subcommands,
// so that the integration tests need nothing else from sandy: Start runs
// Options.Exe (this binary) as the monitor, and the monitor runs it again
// inside the namespaces as the port child. testServerCommand is a helper
// server run inside the namespaces by the tests.
const testStarterCommand = "slirp-test-starter"

// testStarter is runTestStarter in integration builds.
var testStarter func([]string) error

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		var run func([]string) error
		switch os.Args[1] {
		case MonitorCommand:
			run = RunMonitor
		case PortChildCommand:
			run = RunPortChild
		case testServerCommand:
			run = runTestServer
		case testStarterCommand:
			run = testStarter
		case testNotifyExecCommand:
			run = runTestNotifyExec
		}
		if run != nil {
			if err := run(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}
