// Package spare is the protocol of sandy's spare helpers: a helper
// process that has finished its work for one command stays, idle, for
// the next command that would start the same program in the same
// environment, and runs that one's work in place of a new process. Its
// runtime start, package inits and first-use work are done: what a
// short `sandy run` saves is a helper's start-up (the image helper's
// sandy-create, ≈5 ms of a 16 ms `run --rm IMAGE true`; sandy-net's
// 2 ms of CPU beside the container's start).
//
//	sandy ──connect── <state root>/.helpers/KEY.sock
//	    sends: the program's arguments, environment and cwd, and the
//	           fds it would have inherited (Request, SCM_RIGHTS)
//	    gets:  "y" and a pidfd of the spare (or "n …": it starts one)
//	    last:  the spare's final word (the program's: "exit N", …)
//
// A spare serves one request at a time and only a request it would have
// been started for: the same program binary (device, inode, size and
// mtime), the same environment and the same working directory. KEY is
// a hash of the three, so a caller finds the spare made for it or none;
// the spare compares them again. Both ends check that the peer is the
// user (SO_PEERCRED), and the caller that the spare is in the user
// namespace it expects (Dial's peer check). While it serves, a spare
// does not listen: a second command starts a program of its own, which
// becomes the spare after its work when the place is free (a lock per
// key). A spare holds no fd of anybody's between requests (QuietStdio)
// and exits after Linger() without one, or at a quit request (StopAll:
// `sandy system migrate`).
package spare

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/state"
)

// EnvLinger is how long a spare waits for a request (a Go duration, "0"
// for no spares); DefaultLinger when unset or unreadable.
const EnvLinger = "SANDY_HELPER_LINGER"

// DefaultLinger is a spare's wait: long enough for the steps of a CI
// job, short enough that nothing stays long after the last command.
const DefaultLinger = 30 * time.Second

// Linger is how long a spare waits for a request; 0: no spares.
func Linger() time.Duration { return ParseLinger(os.Getenv(EnvLinger)) }

// ParseLinger reads a linger's value (EnvLinger's, or a program's
// --linger): DefaultLinger when empty or unreadable, 0 for "0".
func ParseLinger(v string) time.Duration {
	if v == "" {
		return DefaultLinger
	}
	if v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return DefaultLinger
	}
	return max(d, 0)
}

// Enabled reports whether this process may use and leave spares: a
// linger above 0 and not root (whose helpers share nothing to keep: the
// image helper runs in the host's user namespace, and root's runs are
// the engines', which start few).
func Enabled() bool { return Linger() > 0 && os.Geteuid() != 0 }

// Dir is where spares listen: .helpers/ under the default state root
// (whatever --root says, as the pause record's); no container id starts
// with a dot (state.ValidateID), so `list` never takes it for a
// container and no container's state can be named so.
func Dir() string { return filepath.Join(state.DefaultRoot(), ".helpers") }

// Key names the spare of a program binary (its stat), environment and
// working directory. It finds the spare; it proves nothing (the spare
// compares the request with its own environment and cwd), so a hash of
// no cryptographic strength does (crypto/sha256 would add the FIPS
// module's package inits to every sandy process).
func Key(exe os.FileInfo, env []string, cwd string) string {
	h := fnv.New128a()
	if st, ok := exe.Sys().(*syscall.Stat_t); ok {
		fmt.Fprintf(h, "%d:%d:", st.Dev, st.Ino)
	}
	fmt.Fprintf(h, "%d:%d\x00%s\x00", exe.Size(), exe.ModTime().UnixNano(), cwd)
	for _, e := range envOf(env) {
		h.Write([]byte(e))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// Paths are the socket and the lock of the spare of key in dir.
func Paths(dir, key string) (sock, lock string) {
	return filepath.Join(dir, key+".sock"), filepath.Join(dir, key+".lock")
}

// Request is what a caller sends a spare, with the fds.
type Request struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Cwd  string   `json:"cwd"`
	// Stdio are the numbers (0, 1 or 2) the first len(Stdio) fds go
	// onto in the spare; the rest are the program's other files, in
	// order (Served.Files).
	Stdio []int `json:"stdio"`
}

// Matches reports whether the request is one a program with env and cwd
// would have been started for.
func (r Request) Matches(env []string, cwd string) bool {
	return r.Cwd == cwd && slices.Equal(envOf(r.Env), envOf(env))
}

// envOf is env sorted, without the variables that no program reads and
// that tell the runs of one job apart (noise).
func envOf(env []string) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if !slices.Contains(noise, name) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out
}

// noise: a shell's bookkeeping (the last directory, the last command,
// the nesting level) and hyperfine's padding of every run's environment
// to a random size. Every other variable must be the same.
var noise = []string{"OLDPWD", "_", "SHLVL", "HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET"}

// The messages on a spare's connection.
const (
	yes  = "y"
	no   = "n"
	quit = "quit" // StopAll's request: the spare exits
)

// maxRequest bounds a request (its environment mostly): one datagram.
const maxRequest = 60 << 10

// maxFDs bounds the fds of a request: the stdio and a program's files
// (sandy-net's: its socket, pipes and published ports).
const maxFDs = 64

// Proc is a request a spare took: the caller's handle on it.
type Proc struct {
	conn, pidfd int
	Pid         int
}

// Wait reads the spare's final word (Done's) and closes the handle.
func (p *Proc) Wait() (string, error) {
	defer p.Close()
	buf := make([]byte, 64)
	n, err := unix.Read(p.conn, buf)
	if err != nil || n == 0 {
		return "", fmt.Errorf("the spare %d ended without its status", p.Pid)
	}
	return string(buf[:n]), nil
}

// Signal sends sig to the spare, through its pidfd.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.pidfd >= 0 {
		_ = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
}

// Close lets go of the spare (which goes on with the request).
func (p *Proc) Close() {
	if p.conn >= 0 {
		unix.Close(p.conn)
		unix.Close(p.pidfd)
		p.conn, p.pidfd = -1, -1
	}
}

// Dial hands req and files to the spare of key in dir, if one listens
// and peer (called with its pid) accepts it: nil, and why not, when none
// takes it (the caller starts the program). A spare still finishing its
// last work answers once it is done; ctx ending first gives up with
// ctx's error (the spare, finding the request's sender gone when it
// answers, does not serve it).
func Dial(ctx context.Context, dir, key string, req Request, files []*os.File, peer func(pid int) error) (*Proc, string, error) {
	body, err := json.Marshal(req)
	if err != nil || len(body) > maxRequest || len(files) > maxFDs {
		return nil, "the request is too large for a spare", nil
	}
	sock, _ := Paths(dir, key)
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err.Error(), nil
	}
	p := &Proc{conn: conn, pidfd: -1}
	fail := func(why string) (*Proc, string, error) {
		p.Close()
		return nil, why, nil
	}
	if err := unix.Connect(conn, &unix.SockaddrUnix{Name: sock}); err != nil {
		return fail("none listens (" + err.Error() + ")")
	}
	cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || int(cred.Uid) != os.Getuid() {
		return fail("its peer is not this user")
	}
	p.Pid = int(cred.Pid)
	if err := peer(p.Pid); err != nil {
		return fail(fmt.Sprintf("the spare %d: %v", p.Pid, err))
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	if err := unix.Sendmsg(conn, body, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL); err != nil {
		return fail("sending the request: " + err.Error())
	}
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(conn), Events: unix.POLLIN}}, 50)
		if ctx.Err() != nil {
			_, why, _ := fail("interrupted")
			return nil, why, context.Cause(ctx)
		}
		if n > 0 || err != nil && !errors.Is(err, unix.EINTR) {
			break
		}
	}
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return fail("it closed before it answered")
	}
	if string(buf[:n]) != yes {
		return fail("it declined: " + strings.TrimPrefix(string(buf[:n]), no+" "))
	}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		if rights, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(rights) == 1 {
			p.pidfd = rights[0]
		}
	}
	return p, "", nil
}

// SameUserNS is a Dial peer check: the spare is in the user namespace
// of /proc/PID/ns/user for want's pid ("self" for this process's).
func SameUserNS(want string) func(pid int) error {
	return func(pid int) error {
		a, b := state.NSIno("/proc/"+want+"/ns/user"), state.NSIno("/proc/"+strconv.Itoa(pid)+"/ns/user")
		if a == 0 || a != b {
			return errors.New("not in the expected user namespace")
		}
		return nil
	}
}

// StopAll asks every spare in dir to exit (`sandy system migrate`): it
// reports how many did.
func StopAll(dir string) int {
	names, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	n := 0
	for _, sock := range names {
		conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.Connect(conn, &unix.SockaddrUnix{Name: sock}) == nil {
			if _, err := unix.Write(conn, []byte(quit)); err == nil {
				// The spare closes the connection as it exits.
				_, _ = unix.Read(conn, make([]byte, 8))
				n++
			}
		}
		unix.Close(conn)
	}
	return n
}

// Listener is the place of the spare of a key: its lock, held, and its
// socket, listening.
type Listener struct {
	sock     string
	fd, lock int
}

// Listen takes the place of the spare of key in dir: nil and an error
// when another process holds it.
func Listen(dir, key string) (*Listener, error) {
	sock, lockPath := Paths(dir, key)
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
	return &Listener{sock: sock, fd: fd, lock: lock}, nil
}

// Accept waits up to idle for a connection; either way the place is
// given up (socket removed, then the lock), so that a command that comes
// while this one serves starts a program of its own, which may take the
// place after it.
func (l *Listener) Accept(idle time.Duration) (int, bool) {
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

// Served is a request a spare took (Take).
type Served struct {
	Args []string
	// Files are the request's fds after its stdio, in order; the
	// program owns them.
	Files []*os.File
	conn  int
}

// Done sends the caller the spare's final word, and ends the
// connection. The caller may be gone (sandy run --rm returned): nobody
// reads.
func (s *Served) Done(msg string) {
	_ = unix.Sendto(s.conn, []byte(msg), unix.MSG_NOSIGNAL, nil)
	unix.Close(s.conn)
}

// Take reads the request on conn (Accept's) and takes it if it is one
// this process, with cwd its working directory when it was started,
// would have been started for: its stdio on 0-2, its cwd, "y" and a
// pidfd to the caller. quit: the request was StopAll's. nil: it was
// declined (or its sender is gone); conn is closed then.
func Take(conn int, cwd string) (s *Served, quitting bool) {
	buf, oob := make([]byte, maxRequest+1), make([]byte, unix.CmsgSpace(maxFDs*4))
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
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	decline := func(why string) (*Served, bool) {
		closeAll()
		_ = unix.Sendto(conn, []byte(no+" "+why), unix.MSG_NOSIGNAL, nil)
		unix.Close(conn)
		return nil, false
	}
	cred, cerr := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || n == 0 || cerr != nil || int(cred.Uid) != os.Getuid() {
		closeAll()
		unix.Close(conn)
		return nil, false
	}
	if string(buf[:n]) == quit {
		closeAll()
		unix.Close(conn)
		return nil, true
	}
	var req Request
	switch {
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		return decline("the request is too large")
	case json.Unmarshal(buf[:n], &req) != nil:
		return decline("an unreadable request")
	case len(req.Stdio) > len(fds) || slices.ContainsFunc(req.Stdio, func(fd int) bool { return fd < 0 || fd > 2 }):
		return decline("a request's stdio are fds 0-2, and sent")
	case !req.Matches(os.Environ(), cwd):
		return decline("another environment or working directory")
	}
	if err := os.Chdir(cwd); err != nil {
		return decline(err.Error())
	}
	for i, to := range req.Stdio {
		if err := unix.Dup3(fds[i], to, 0); err != nil {
			return decline(err.Error())
		}
		unix.Close(fds[i])
	}
	s = &Served{Args: req.Args, conn: conn}
	for _, fd := range fds[len(req.Stdio):] {
		s.Files = append(s.Files, os.NewFile(uintptr(fd), "spare-file"))
	}
	fds = nil
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		closeFiles(s.Files)
		return decline(err.Error())
	}
	// A sender that gave up (interrupted) is gone: EPIPE, nothing served.
	err = unix.Sendmsg(conn, []byte(yes), unix.UnixRights(pidfd), nil, unix.MSG_NOSIGNAL)
	unix.Close(pidfd)
	if err != nil {
		closeFiles(s.Files)
		unix.Close(conn)
		return nil, false
	}
	return s, false
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// QuietStdio puts /dev/null on fds 0, 1 and 2: an idle spare holds no
// caller's stdio (a pipe that out=$(sandy run ...) waits on).
func QuietStdio() error {
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

// Self is this process's spare key and the cwd it was started in, as a
// caller computes them for the program it would start: taken before the
// spare leaves its directory (it waits in /).
type Self struct{ Key, Cwd string }

// Me is this process's Self, taken at the first call, which must come
// before the spare leaves the directory it was started in.
var Me = sync.OnceValues(takeSelf)

func takeSelf() (Self, error) {
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return Self{}, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return Self{}, err
	}
	return Self{Key(fi, os.Environ(), cwd), cwd}, nil
}
