//go:build containers_image_openpgp

package storehelper

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// linger is the spare's life (imagehelper/spare.go has the protocol):
// after the session of g, the helper waits in g.spare for the next run's
// request, serves it as if it had been started with its arguments, and
// waits again, until Linger() passes without one, another helper holds
// the place, or a request says quit.
func (p Program) linger(g *Env) {
	idle := imagehelper.Linger()
	if idle <= 0 {
		return
	}
	for {
		// Nothing of the last session's stays open: its caller's
		// stderr (a pipe that out=$(sandy run ...) waits on), its pipes.
		if err := quietStdio(); err != nil {
			return
		}
		g.takeSparePlace()
		// The removal the last session did is finished: the lock every
		// helper verb waits for goes now (a fresh helper's goes with
		// its exit), once the spare is in place, so that what waited
		// for it (rmi, system migrate) sees the spare too.
		if g.removals != nil {
			g.removals.Close()
			g.removals = nil
		}
		l := g.place
		if l == nil {
			return
		}
		// Idle, it holds no directory of the user's busy.
		_ = os.Chdir("/")
		conn, ok := l.accept(idle)
		if !ok {
			return
		}
		next, quit := p.serve(conn)
		unix.Close(conn)
		if quit {
			return
		}
		if next == nil {
			// Declined, handed over or failed before its session:
			// nothing of it is held.
			next = &Env{spares: true}
		}
		next.spare = g.spare
		g = next
	}
}

// takeSparePlace takes the place of the spare of this helper's key in
// g.spare, if it is free and spares are on; g.place says whether it did.
func (g *Env) takeSparePlace() {
	if g.place != nil || g.spare == "" || imagehelper.Linger() <= 0 {
		return
	}
	me, err := spareSelf()
	if err != nil {
		return
	}
	g.place, _ = listenSpare(g.spare, me.key)
}

// spareSelf is this process's spare key (its binary, environment and
// cwd, as sandy computes it for the helper it would start) and the cwd,
// taken once, in the directory it was started in: the spare waits in /.
var spareSelf = sync.OnceValues(func() (self, error) {
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return self{}, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return self{}, err
	}
	return self{imagehelper.SpareKey(fi, os.Environ(), cwd), cwd}, nil
})

type self struct{ key, cwd string }

// quietStdio puts /dev/null on fds 0, 1 and 2.
func quietStdio() error {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	for fd := range 3 {
		if err := unix.Dup3(null, fd, 0); err != nil {
			return err
		}
	}
	return nil
}

// spareListener is the place of the spare of a key: its lock, held,
// and its socket, listening.
type spareListener struct {
	sock     string
	fd, lock int
}

// listenSpare takes the place of the spare of key in dir: nil and an
// error when another process holds it.
func listenSpare(dir, key string) (*spareListener, error) {
	sock, lockPath := imagehelper.SparePaths(dir, key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := unix.Open(lockPath, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(lock)
		return nil, err
	}
	_ = unix.Unlink(sock)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		old := unix.Umask(0o177)
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: sock})
		unix.Umask(old)
		if err == nil {
			err = unix.Listen(fd, 8)
		}
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		unix.Close(lock)
		return nil, err
	}
	return &spareListener{sock: sock, fd: fd, lock: lock}, nil
}

// accept waits up to idle for a connection; either way the place is
// given up (socket removed, then the lock), so that a run that comes
// while this one serves starts a helper of its own, which may take the
// place after it.
func (l *spareListener) accept(idle time.Duration) (int, bool) {
	defer func() {
		_ = unix.Unlink(l.sock)
		unix.Close(l.fd)
		unix.Close(l.lock)
	}()
	pfd := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
	ms := int(min(idle.Milliseconds(), math.MaxInt32))
	for {
		n, err := unix.Poll(pfd, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return -1, false
		}
		conn, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
			continue
		}
		return conn, err == nil
	}
}

// serve reads the request on conn and runs it on the fds it carries:
// the verb's Env (nil when it was declined), and quit for a quit
// request.
func (p Program) serve(conn int) (next *Env, quit bool) {
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(3*4))
	n, oobn, flags, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	var fds []int
	if err == nil {
		if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
			for i := range msgs {
				if r, rerr := unix.ParseUnixRights(&msgs[i]); rerr == nil {
					fds = append(fds, r...)
				}
			}
		}
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	cred, cerr := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || n == 0 || cerr != nil || int(cred.Uid) != os.Getuid() {
		return nil, false
	}
	if string(buf[:n]) == imagehelper.SpareQuit {
		return nil, true
	}
	decline := func(why string) (*Env, bool) {
		send(conn, imagehelper.SpareNo+" "+why)
		return nil, false
	}
	var req imagehelper.SpareRequest
	me, err := spareSelf()
	switch {
	case err != nil:
		return decline(err.Error())
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(fds) != 3:
		return decline("a request wants its arguments and three fds")
	case json.Unmarshal(buf[:n], &req) != nil:
		return decline("an unreadable request")
	case !req.Matches(os.Environ(), me.cwd):
		return decline("another environment or working directory")
	}
	if err := os.Chdir(me.cwd); err != nil {
		return decline(err.Error())
	}
	for i, fd := range fds {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return decline(err.Error())
		}
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return decline(err.Error())
	}
	// A sender that gave up (interrupted) is gone: EPIPE, nothing served.
	err = unix.Sendmsg(conn, []byte(imagehelper.SpareYes), unix.UnixRights(pidfd), nil, unix.MSG_NOSIGNAL)
	unix.Close(pidfd)
	if err != nil {
		return nil, false
	}
	code, g := p.main(req.Args, true)
	msg := imagehelper.SpareExit + strconv.Itoa(code)
	if code == codeHandOver {
		msg = imagehelper.SpareHandOver
	}
	// sandy may be gone (run --rm returned at "locked"): nobody reads.
	send(conn, msg)
	return g, false
}

// send sends msg on conn, whose peer may be gone (no SIGPIPE).
func send(conn int, msg string) {
	_ = unix.Sendto(conn, []byte(msg), unix.MSG_NOSIGNAL, nil)
}
