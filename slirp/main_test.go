//go:build linux

package slirp

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary play the sandy binary's hidden subcommands,
// so that the integration tests need nothing else from sandy: Start runs
// Options.Exe (a sealed copy of this binary, testExe) as the monitor, and
// again inside the namespaces as the port child. testServerCommand is a helper
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
		case TunProbeRole:
			run = TunProbeMain
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

// sealedTestExe is a sealed memfd copy of this test binary, made once per
// process: the protected handle Options.Exe requires, made the way
// userns.SelfExe makes sandy's.
var sealedTestExe = sync.OnceValues(func() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("slirp-test", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:slirp-test")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|sealedSeals); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing: %w", err)
	}
	return f, nil
})

// testExe returns sealedTestExe's handle; the process keeps it open.
func testExe(t testing.TB) *os.File {
	t.Helper()
	f, err := sealedTestExe()
	if err != nil {
		t.Fatalf("sealed copy of the test binary: %v", err)
	}
	return f
}
