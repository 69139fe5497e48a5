package userns

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

const inUserNSChild = "SANDY_TEST_INUSERNS_CHILD"

// TestInUserNS asks InUserNS here (the test runs in the initial user
// namespace: as root, or as sandytest on the host) and in a re-exec of the
// test binary cloned into a new user namespace, where it must say yes.
func TestInUserNS(t *testing.T) {
	if os.Getenv(inUserNSChild) != "" {
		os.Stdout.WriteString(strconv.FormatBool(InUserNS()))
		os.Exit(0)
	}
	if InUserNS() {
		// Every machine this suite runs on (a developer's, CI's, the VMs)
		// runs it in the initial user namespace.
		t.Fatal("InUserNS() = true in the initial user namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInUserNS$")
	cmd.Env = append(os.Environ(), inUserNSChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("re-exec in a new user namespace: %v", err)
	}
	if got := string(bytes.TrimSpace(out)); got != "true" {
		t.Fatalf("InUserNS() in a new user namespace = %q, want true", got)
	}
}
