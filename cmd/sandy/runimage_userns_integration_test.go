//go:build integration

package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunImageSharedUserNS: a container from an image, with the store's
// maps, runs in the user namespace the store's pause process holds, as
// podman's rootless containers do (userns/shared.go): in the foreground
// and detached (the monitor starts it), and exec joins it there;
// --userns=keep-id, whose maps are not the store's, gets a namespace of
// its own. (StoreUserNS joins only what validPause accepts, whose forged
// records TestImagePauseProcess refuses.)
func TestRunImageSharedUserNS(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, dir := pauseEnv(t)
	e.loadImage("localhost/bb:ns", imagefix.Busybox(t))
	nsOf := func(args ...string) (string, string) {
		t.Helper()
		r := e.run_(nil, append(append([]string{"--debug", "run", "--rm", "--network", "none"}, args...), "localhost/bb:ns", "readlink", "/proc/self/ns/user")...)
		if r.code != 0 {
			t.Fatalf("run %v: exit %d\n%s", args, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout), r.stderr
	}
	const shared, own = "the init started in the image store's user namespace", "the init makes a user namespace of its own"

	got, log := nsOf()
	rec := readPauseRec(t, dir)
	want := fmt.Sprintf("user:[%d]", nsInode(t, rec.Pid, "user"))
	if got != want || !strings.Contains(log, shared) {
		t.Errorf("run: the container's user namespace is %s, want the pause process %d's %s, and --debug to say so:\n%s", got, rec.Pid, want, log)
	}

	got, log = nsOf("--userns=keep-id")
	if got == want || !strings.Contains(log, own) || !strings.Contains(log, "are not the store's") {
		t.Errorf("run --userns=keep-id: the container's user namespace is %s (the store's %s): want one of its own, and why:\n%s", got, want, log)
	}

	id := e.runD("--network", "none", "localhost/bb:ns", "sleep", "1000")
	if got := strings.TrimSpace(e.ok("exec", id, "readlink", "/proc/self/ns/user")); got != want {
		t.Errorf("run -d, then exec: the container's user namespace is %s, want the store's %s", got, want)
	}
	if got := strings.Fields(e.ok("exec", id, "cat", "/proc/self/uid_map")); len(got) < 3 || got[0] != "0" || got[1] != fmt.Sprint(os.Getuid()) {
		t.Errorf("run -d: uid_map %q: want 0 mapped to the caller %d first", got, os.Getuid())
	}
	e.ok("rm", "-f", id)

}
