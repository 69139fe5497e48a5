package imagehelper

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/state"
)

// TestPauseRecord: a record is read only from a private regular file of
// the caller's, of this boot; anything else names no pause process.
func TestPauseRecord(t *testing.T) {
	boot := bootID()
	if boot == "" {
		t.Skip("no /proc/sys/kernel/random/boot_id")
	}
	good := `{"pid":` + strconv.Itoa(os.Getpid()) + `,"start":1,"boot":"` + boot + `","userns":2}`
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		symlink    bool
		want       string // "" for a record read
	}{
		{name: "good", body: good, mode: 0o600},
		{name: "group-writable", body: good, mode: 0o620, want: "not a private file"},
		{name: "symlink", body: good, mode: 0o600, symlink: true, want: "no record"},
		{name: "garbage", body: "1234\n", mode: 0o600, want: "not a pause record"},
		{name: "earlier boot", body: strings.Replace(good, boot, "00000000-0000-0000-0000-000000000000", 1), mode: 0o600, want: "earlier boot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, pauseFile)
			if tc.symlink {
				p = filepath.Join(dir, "elsewhere")
				if err := os.Symlink(p, filepath.Join(dir, pauseFile)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(p, []byte(tc.body), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			rec, err := readPauseRecord(dir)
			switch {
			case tc.want == "" && (err != nil || rec.Pid != os.Getpid()):
				t.Errorf("got %+v, %v; want the record", rec, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want an error with %q", err, tc.want)
			}
		})
	}
}

// TestCheckPauseRefusesThisProcess: a record naming a process that is not
// a pause (this test, in the caller's own user namespace) is refused
// before its namespace is opened.
func TestCheckPauseRefusesThisProcess(t *testing.T) {
	pid := os.Getpid()
	start, _, err := state.ProcStart(pid)
	if err != nil {
		t.Fatal(err)
	}
	ns, why := checkPause(pauseRecord{Pid: pid, Start: start}, &idmap.Plan{})
	if ns != nil || !strings.Contains(why, "pause role") {
		t.Errorf("checkPause(self) = %v, %q; want refused for its role", ns, why)
	}
	if ns, why := checkPause(pauseRecord{Pid: pid, Start: start + 1}, nil); ns != nil || !strings.Contains(why, "start time") {
		t.Errorf("checkPause(self, another start time) = %v, %q; want refused", ns, why)
	}
}
