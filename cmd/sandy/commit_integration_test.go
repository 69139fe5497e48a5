//go:build integration

package main_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestCommit: a container's writes, deletions (whiteouts) and replaced
// directories (opaque) become a new image layer (sandy's store: kernel
// overlay); the committed image runs with them and with the --change
// instructions, and can be saved; a second commit to the same name moves
// it; bad input makes nothing.
func TestCommit(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:changes", imagefix.BusyboxWithChanges(t))
	e.ok("run", "--network", "none", "--name", "work", "localhost/bb:changes", "sh", "-c",
		"echo new > /new && rm /etc/passwd-copy 2>/dev/null; rm /bin/ls && rm -rf /home/app && mkdir /home/app && echo only > /home/app/only")

	out := e.ok("commit", "-c", `CMD ["cat", "/new"]`, "-c", "ENV COMMITTED=yes", "-m", "my change", "-a", "tester", "work", "committed")
	id := strings.TrimSpace(out)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("commit printed %q, want the image id", out)
	}
	if got := e.ok("run", "--network", "none", "--rm", "localhost/committed"); got != "new\n" {
		t.Errorf("CMD of the committed image: %q", got)
	}
	got := e.ok("run", "--network", "none", "--rm", "committed", "sh", "-c",
		"echo $COMMITTED; test -e /bin/ls || echo ls-gone; ls /home/app; cat "+imagefix.Replaced+"; test -e "+imagefix.WhitedOut+" || echo still-whited-out")
	if want := "yes\nls-gone\nonly\n" + imagefix.ReplacedAfter + "still-whited-out\n"; got != want {
		t.Errorf("the committed image's content: %q, want %q", got, want)
	}
	var inspect []struct {
		ID      string `json:"Id"`
		Author  string
		History []struct {
			Comment   string `json:"comment"`
			CreatedBy string `json:"created_by"`
		}
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(e.ok("image", "inspect", "localhost/committed:latest")), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	h := inspect[0].History
	if inspect[0].ID != id || inspect[0].Author != "tester" || len(h) == 0 || h[len(h)-1].Comment != "my change" || len(inspect[0].RootFS.Layers) != 3 {
		t.Errorf("image inspect: %+v", inspect[0])
	}
	// The image is whole: it can be saved (every layer read back by its digest).
	e.ok("save", "-o", filepath.Join(e.dir, "committed.tar"), "localhost/committed")

	// A second commit takes the name; the first image keeps its id.
	e.ok("run", "--network", "none", "--name", "again", "localhost/committed", "sh", "-c", "echo second > /new")
	second := strings.TrimSpace(e.ok("commit", "-q", "again", "committed"))
	if second == id {
		t.Fatal("the second commit has the first's id")
	}
	if got := e.ok("run", "--network", "none", "--rm", "committed"); got != "second\n" {
		t.Errorf("after the second commit: %q", got)
	}
	if got := e.ok("run", "--network", "none", "--rm", id); got != "new\n" {
		t.Errorf("the first image by id: %q", got)
	}
	// Bad input: nothing made.
	before := e.ok("images", "-q")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"commit", "no-such-container", "x"}, `no container with name or id "no-such-container"`},
		{[]string{"commit", "-c", "RUN make", "work", "x"}, "RUN is not an instruction"},
		{[]string{"commit", "work", "Bad:Name:x"}, "not a valid image name"},
		{[]string{"commit", "--squash", "work", "x"}, "--squash"},
	} {
		if msg := e.fails(125, c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("sandy %v: %q, want %q", c.args, msg, c.want)
		}
	}
	if after := e.ok("images", "-q"); after != before {
		t.Errorf("images after failed commits:\n%s\nbefore:\n%s", after, before)
	}
	e.ok("container", "rm", "work", "again")
}

// TestCommitPodmanReads: podman 4.3 runs an image sandy committed in the
// store they share (made by podman: its driver).
func TestCommitPodmanReads(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	podman, _ := podmanEnv(t, e)
	// podman first: podman 4.3 picks its own driver for a new store
	// and would not see one sandy started (TestImageRmiInUse).
	podman("images")
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	e.ok("run", "--network", "none", "--name", "work", "localhost/bb:plain", "sh", "-c", "echo made-by-sandy > /new; rm /bin/ls")
	e.ok("commit", "-c", `CMD ["cat", "/new"]`, "work", "committed")
	if got := podman("run", "--rm", "--network", "none", "localhost/committed"); got != "made-by-sandy\n" {
		t.Errorf("podman run of the committed image: %q", got)
	}
	if got := podman("run", "--rm", "--network", "none", "localhost/committed", "sh", "-c", "test -e /bin/ls || echo gone"); got != "gone\n" {
		t.Errorf("podman sees the deletion: %q", got)
	}
	e.ok("container", "rm", "work")
}
