package imagehelper

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/state"
)

// A spare helper is the sandy-create of a `run IMAGE` that has finished
// its container's session and stays, idle, for the next one: its
// runtime, its package inits and the storage library's first-use work
// are done, so the next run's storage container is made without a
// helper's start-up (≈5 ms of a 16 ms `run --rm IMAGE true` here).
//
//	sandy run IMAGE ──connect── <state root>/.helpers/KEY.sock
//	    sends: the helper's arguments, environment and cwd (SpareRequest),
//	           its stdin, stdout and stderr (SCM_RIGHTS)
//	    gets:  "y" and a pidfd of the spare (or "n", and starts a helper)
//	    then:  the --hold protocol on those pipes, as with a started helper
//	    last:  "exit N" (or "handover": start sandy-store, as the exec of
//	           a started sandy-create would)
//
// A spare serves one request at a time and only a request it would have
// been started for: the same helper binary (device, inode, size and
// mtime), the same environment and the same working directory; KEY is a
// hash of the three, so sandy finds the spare made for it or none. The
// peer must be the user (SO_PEERCRED) and the spare must be in the
// namespace of the user's pause process, which the container's init
// joins. While it serves, it does not listen: a second run starts a
// helper of its own, which becomes the spare after its session when the
// place is free (a lock per key). A spare holds no fd of anybody's
// between sessions (stdio on /dev/null) and exits after Linger() without
// a request, at SIGTERM, or when `sandy system migrate` ends the pause
// (StopSpares). Not for root, whose helper runs in the host's user
// namespace and shares nothing to keep.

// EnvLinger is how long a spare helper waits for a request (a Go
// duration, "0" for no spare); DefaultLinger when unset or unreadable.
const EnvLinger = "SANDY_HELPER_LINGER"

// DefaultLinger is a spare's wait: long enough for the steps of a CI
// job, short enough that nothing stays long after the last command.
const DefaultLinger = 30 * time.Second

// Linger is how long a spare waits for a request; 0: no spares.
func Linger() time.Duration {
	v := os.Getenv(EnvLinger)
	if v == "" {
		return DefaultLinger
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if n, nerr := strconv.Atoi(v); nerr == nil && n == 0 {
			return 0
		}
		return DefaultLinger
	}
	return max(d, 0)
}

// SpareDir is where spares listen: .helpers/ under the default state
// root, beside the pause record (whatever --root says, as the pause's);
// no container id starts with a dot (state.ValidateID), so `list` never
// takes it for a container and no container's state can be named so.
func SpareDir() string { return filepath.Join(state.DefaultRoot(), ".helpers") }

// SpareKey names the spare of a helper binary (its stat), environment
// and working directory. It finds the spare; it proves nothing (the
// spare compares the request with its own environment and cwd), so a
// hash of no cryptographic strength does (crypto/sha256 would add the
// FIPS module's package inits to every sandy process).
func SpareKey(exe os.FileInfo, env []string, cwd string) string {
	h := fnv.New128a()
	if st, ok := exe.Sys().(*syscall.Stat_t); ok {
		fmt.Fprintf(h, "%d:%d:", st.Dev, st.Ino)
	}
	fmt.Fprintf(h, "%d:%d\x00%s\x00", exe.Size(), exe.ModTime().UnixNano(), cwd)
	for _, e := range spareEnv(env) {
		h.Write([]byte(e))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// SparePaths are the socket and the lock of the spare of key in dir.
func SparePaths(dir, key string) (sock, lock string) {
	return filepath.Join(dir, key+".sock"), filepath.Join(dir, key+".lock")
}

// SpareRequest is what sandy sends a spare with the three stdio fds.
type SpareRequest struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Cwd  string   `json:"cwd"`
}

// Matches reports whether the request is one a helper with env and cwd
// would have been started for.
func (r SpareRequest) Matches(env []string, cwd string) bool {
	return r.Cwd == cwd && slices.Equal(spareEnv(r.Env), spareEnv(env))
}

// spareEnv is env sorted, without the variables that no helper reads
// and that tell the runs of one job apart (spareNoise).
func spareEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if !slices.Contains(spareNoise, name) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out
}

// spareNoise: a shell's bookkeeping (the last directory, the last
// command, the nesting level) and hyperfine's padding of every run's
// environment to a random size. Every other variable must be the same.
var spareNoise = []string{"OLDPWD", "_", "SHLVL", "HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET"}

// The spare's messages on the connection.
const (
	SpareYes      = "y"
	SpareNo       = "n"
	SpareExit     = "exit "
	SpareHandOver = "handover"
	// SpareQuit is a request of StopSpares: the spare exits.
	SpareQuit = "quit"
)

// errSpareHandOver: the spare would have handed the verb to sandy-store.
var errSpareHandOver = errors.New("the spare hands the verb over")

// spareProc is a helper session served by a spare.
type spareProc struct {
	conn, pidfd int
	pid         int
}

func (p *spareProc) wait() (int, error) {
	defer p.close()
	buf := make([]byte, 64)
	n, err := unix.Read(p.conn, buf)
	if err != nil || n == 0 {
		return -1, fmt.Errorf("the spare helper %d ended without its status", p.pid)
	}
	msg := string(buf[:n])
	if msg == SpareHandOver {
		return -1, errSpareHandOver
	}
	code, err := strconv.Atoi(strings.TrimPrefix(msg, SpareExit))
	if err != nil || !strings.HasPrefix(msg, SpareExit) {
		return -1, fmt.Errorf("the spare helper %d said %q", p.pid, msg)
	}
	return code, nil
}

func (p *spareProc) signal(sig syscall.Signal) {
	if p.pidfd >= 0 {
		_ = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
}

func (p *spareProc) close() {
	if p.conn >= 0 {
		unix.Close(p.conn)
		unix.Close(p.pidfd)
		p.conn, p.pidfd = -1, -1
	}
}

// dialSpare hands the helper's run of args to the spare made for exe and
// this process's environment and cwd, if one listens: nil, and why not,
// when none takes it (the caller starts a helper). stdio are the
// helper's stdin, stdout and stderr. A spare still removing the last
// run's container answers once it is done (as a helper would wait for
// that removal's lock); ctx ending first gives up with ctx's error (the
// caller starts no helper: the spare, finding the request's sender gone
// when it answers, does not serve it).
func dialSpare(ctx context.Context, exe *os.File, args []string, stdio [3]*os.File) (*spareProc, string, error) {
	if Linger() == 0 || os.Geteuid() == 0 {
		return nil, "no spares (root, or " + EnvLinger + "=0)", nil
	}
	plan, err := idmap.Resolve(idmap.CallerRequest())
	if err != nil {
		return nil, err.Error(), nil
	}
	// The namespace the user's pause process holds now: what the record
	// names (StoreUserNS, which the init's own start calls, checks the
	// rest of it).
	rec, err := readPauseRecord(state.DefaultRoot())
	if err != nil {
		return nil, "no pause process: " + err.Error(), nil
	}
	if start, _, err := state.ProcStart(rec.Pid); err != nil || start != rec.Start {
		return nil, "the recorded pause process is gone", nil
	}
	pauseIno := nsIno(fmt.Sprintf("/proc/%d/ns/user", rec.Pid))
	fi, err := exe.Stat()
	if err != nil {
		return nil, err.Error(), nil
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err.Error(), nil
	}
	req := SpareRequest{Args: args, Env: storeEnv(plan), Cwd: cwd}
	sock, _ := SparePaths(SpareDir(), SpareKey(fi, req.Env, cwd))
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err.Error(), nil
	}
	p := &spareProc{conn: conn, pidfd: -1}
	fail := func(why string) (*spareProc, string, error) {
		unix.Close(conn)
		if p.pidfd >= 0 {
			unix.Close(p.pidfd)
		}
		return nil, why, nil
	}
	if err := unix.Connect(conn, &unix.SockaddrUnix{Name: sock}); err != nil {
		return fail("none listens (" + err.Error() + ")")
	}
	cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || int(cred.Uid) != os.Getuid() {
		return fail("its peer is not this user")
	}
	p.pid = int(cred.Pid)
	if pauseIno == 0 || pauseIno != nsIno(fmt.Sprintf("/proc/%d/ns/user", cred.Pid)) {
		return fail(fmt.Sprintf("the spare %d is not in the pause process's user namespace", cred.Pid))
	}
	body, err := json.Marshal(req)
	if err != nil || len(body) > spareMax {
		return fail("the request is too large for a spare")
	}
	fds := []int{int(stdio[0].Fd()), int(stdio[1].Fd()), int(stdio[2].Fd())}
	if err := unix.Sendmsg(conn, body, unix.UnixRights(fds...), nil, 0); err != nil {
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
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return fail("it closed before it answered")
	}
	if string(buf[:n]) != SpareYes {
		return fail("it declined: " + string(buf[:n]))
	}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		if rights, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(rights) == 1 {
			p.pidfd = rights[0]
		}
	}
	return p, "", nil
}

// spareMax bounds a request (its environment mostly): one datagram.
const spareMax = 60 << 10

// StopSpares asks every spare helper of the user to exit (`sandy system
// migrate`, with the pause): it reports how many did.
func StopSpares() int {
	dir := SpareDir()
	names, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	n := 0
	for _, sock := range names {
		conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.Connect(conn, &unix.SockaddrUnix{Name: sock}) == nil {
			if _, err := unix.Write(conn, []byte(SpareQuit)); err == nil {
				// The spare closes the connection as it exits.
				_, _ = unix.Read(conn, make([]byte, 8))
				n++
			}
		}
		unix.Close(conn)
	}
	return n
}
