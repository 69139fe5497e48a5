package lifecycle

import (
	"os"

	"github.com/sandy-rt/sandy/userns"
)

// childEnv is the environment of every re-exec'd sandy child (the
// container process's comes in its config). GOMAXPROCS=1 keeps the Go
// runtime's threads down to a handful: they count against the container's
// pids limit while the init sets it up (runc's init does the same).
var childEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"}

// childLink is what every re-exec'd sandy child starts with: a handle on
// the sealed sandy binary (userns.SelfExe) and a sync socket pair, whose
// parent end this process keeps.
type childLink struct {
	exe    *os.File
	parent *userns.Conn
	child  *os.File // goes to the child as an ExtraFile
}

// newChildLink opens both; with passCred the parent end learns each
// message's sender pid (the init's hello).
func newChildLink(passCred bool) (*childLink, error) {
	exe, err := userns.SelfExe()
	if err != nil {
		return nil, err
	}
	parent, child, err := userns.NewPair()
	if err != nil {
		exe.Close()
		return nil, err
	}
	if passCred {
		if err := parent.PassCred(); err != nil {
			exe.Close()
			parent.Close()
			child.Close()
			return nil, err
		}
	}
	return &childLink{exe: exe, parent: parent, child: child}, nil
}

// keepExe hands the binary handle over to the caller, who closes it;
// started then leaves it open. Take it after the child has started from it.
func (l *childLink) keepExe() *os.File {
	exe := l.exe
	l.exe = nil
	return exe
}

// started closes what only the child needs, once it has it: with the
// child's end closed here, a child that dies reads as EOF, never a hang.
func (l *childLink) started() {
	l.exe.Close()
	l.child.Close()
}

// cleanups is a stack of undo functions run in reverse order unless
// released (gVisor's pkg/cleanup).
type cleanups struct{ fns []func() }

func (c *cleanups) add(fn func()) { c.fns = append(c.fns, fn) }

// run undoes everything added so far, newest first.
func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

// release forgets the undo functions: the work is kept.
func (c *cleanups) release() { c.fns = nil }
