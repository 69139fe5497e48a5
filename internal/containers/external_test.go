package containers

import (
	"fmt"
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

// TestExternalError: the verbs' refusal of an external container says
// whose it is and what to run, per owner: sandy rm for sandy's leftover,
// waiting for the run that makes one, buildah for buildah's, podman's
// verb for the rest; never the old "made by podman or buildah" of all.
func TestExternalError(t *testing.T) {
	start, _, err := state.ProcStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	alive := &imagehelper.Creator{Pid: os.Getpid(), Start: start}
	gone := &imagehelper.Creator{Pid: os.Getpid(), Start: start + 1}
	id := strings.Repeat("cd", 32)
	for _, tc := range []struct {
		name string
		sc   imagehelper.StoredContainer
		v    refusal
		want []string
	}{
		{"sandy's leftover, stop", imagehelper.StoredContainer{Owner: imagehelper.OwnerSandy, Creator: gone}, refuseStop,
			[]string{"container cdcdcdcdcdcd is the storage container of a sandy run killed before it wrote its record", "nothing can stop it", "remove it with sandy rm cdcdcdcdcdcd"}},
		{"sandy's leftover without a creator, top", imagehelper.StoredContainer{Owner: imagehelper.OwnerSandy}, refuseTop,
			[]string{"killed before it wrote its record", "nothing can see the processes of it", "sandy rm cdcdcdcdcdcd"}},
		{"being made, attach", imagehelper.StoredContainer{Owner: imagehelper.OwnerSandy, Creator: alive}, refuseAttach,
			[]string{fmt.Sprintf("is being made by sandy (pid %d), which has not written its record yet", os.Getpid()), "wait for that run, then attach to it"}},
		{"buildah's, cp", imagehelper.StoredContainer{Owner: imagehelper.OwnerBuildah}, refuseCopy,
			[]string{"buildah's working container", "sandy cannot copy files to or from", "buildah copy", "buildah rm cdcdcdcdcdcd"}},
		{"unknown, logs", imagehelper.StoredContainer{}, refuseLogs,
			[]string{"no mark of sandy's", "podman made it", "use podman logs cdcdcdcdcdcd"}},
		{"unknown, wait", imagehelper.StoredContainer{}, refuseWait, []string{"sandy cannot wait for it; use podman wait cdcdcdcdcdcd"}},
		{"unknown, start", imagehelper.StoredContainer{}, refuseStart, []string{"use podman start cdcdcdcdcdcd"}},
		{"unknown, kill", imagehelper.StoredContainer{}, refuseKill, []string{"use podman kill cdcdcdcdcdcd"}},
		{"sandy's leftover, exec", imagehelper.StoredContainer{Owner: imagehelper.OwnerSandy, Creator: gone}, refuseExec, []string{"nothing can run a command in it", "sandy rm cdcdcdcdcdcd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.sc.ID = id
			msg := externalError(externalOf(Listed{ID: id}, tc.sc), tc.v).Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "made by podman or buildah") {
				t.Errorf("%q: the old wording", msg)
			}
		})
	}
}
