package containers

import (
	"os"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/state"
)

// TestExternalRemoval: rm removes a leftover of sandy's without -f, and
// refuses, without -f, one a live sandy is making, buildah's and one of
// no known owner, each naming the owner and the way out.
func TestExternalRemoval(t *testing.T) {
	start, _, err := state.ProcStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	alive := &imagehelper.Creator{Pid: os.Getpid(), Start: start}
	gone := &imagehelper.Creator{Pid: os.Getpid(), Start: start + 1} // this pid, another start: a reused pid
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name     string
		sc       imagehelper.StoredContainer
		leftover bool
		command  string
		refused  string // the error without -f, "" for none
	}{
		{"sandy's, its creator gone", imagehelper.StoredContainer{Owner: imagehelper.OwnerSandy, Creator: gone}, true, "storage", ""},
		{"sandy's, no creator read", imagehelper.StoredContainer{Owner: imagehelper.OwnerSandy}, true, "storage", ""},
		{"sandy's, being made", imagehelper.StoredContainer{Owner: imagehelper.OwnerSandy, Creator: alive}, false, "storage", "is being made by sandy"},
		{"buildah's", imagehelper.StoredContainer{Owner: imagehelper.OwnerBuildah}, false, "buildah", "buildah rm abababababab"},
		{"podman's or unknown", imagehelper.StoredContainer{}, false, "storage", "podman rm abababababab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.sc.ID = id
			l := externalOf(Listed{ID: id}, tc.sc)
			if !l.External || l.State != StateStorage || l.Running() {
				t.Errorf("external %v, state %q, running %v: want an external container in state storage, not running", l.External, l.State, l.Running())
			}
			if l.Leftover() != tc.leftover {
				t.Errorf("Leftover() = %v, want %v", l.Leftover(), tc.leftover)
			}
			if len(l.Command) != 1 || l.Command[0] != tc.command {
				t.Errorf("command %q, want podman's %q", l.Command, tc.command)
			}
			err := checkExternalRemoval(l, false)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("rm: %v, want it removed", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "rm -f")):
				t.Errorf("rm: %v, want a refusal with %q and the -f way out", err, tc.refused)
			}
			if err := checkExternalRemoval(l, true); err != nil {
				t.Errorf("rm -f: %v, want it removed", err)
			}
		})
	}
}
