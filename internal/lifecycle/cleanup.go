package lifecycle

import (
	"errors"
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
	how    string // how exe is protected (userns.ProtectSelfExe), for --debug
	parent *userns.Conn
	child  *os.File // goes to the child as an ExtraFile
}

// newChildLink opens both; with passCred the parent end learns each
// message's sender pid (the init's hello).
// A nil copy makes the handle now.
func newChildLink(passCred bool, copied *exeCopy) (*childLink, error) {
	var exe *os.File
	var how string
	var err error
	if copied != nil {
		exe, how, err = copied.take()
	} else {
		exe, how, err = userns.ProtectSelfExe()
	}
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
	return &childLink{exe: exe, how: how, parent: parent, child: child}, nil
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

// exeCopy is a userns.ProtectSelfExe made on a goroutine from the start
// of create or exec, so that the read-only overlay mount of a
// user-writable sandy (root's, or a user namespace's: 0.4-0.9 ms on this
// project's 2-core machine), or its sealed copy where that fails (2.5 ms
// for a 14 MB binary), is made beside the first steps (loading the
// bundle, the state, the id maps) rather than after them; startInit takes
// it. Either way the child is exec'd from the same protected handle.
type exeCopy struct {
	done chan struct{}
	f    *os.File
	how  string
	err  error
}

// copySelfExe starts the copy.
func copySelfExe() *exeCopy {
	c := &exeCopy{done: make(chan struct{})}
	go func() {
		c.f, c.how, c.err = userns.ProtectSelfExe()
		close(c.done)
	}()
	return c
}

// take waits for the copy and hands it to the caller, who closes it.
func (c *exeCopy) take() (*os.File, string, error) {
	<-c.done
	f, how, err := c.f, c.how, c.err
	c.f, c.err = nil, errors.New("the sandy binary's handle was taken already")
	return f, how, err
}

// close closes a copy that nobody took (a set-up that failed first).
func (c *exeCopy) close() {
	<-c.done
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}
