package imagehelper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/userns"
)

// The pause process keeps the image store's user namespace alive between
// commands, as podman's does (pkg/rootless: pause.pid under
// $XDG_RUNTIME_DIR/libpod/tmp), so that an image helper joins it instead
// of making a new one: a new user namespace costs a clone of the `sh`
// stub and a newuidmap and a newgidmap run (two setuid programs that read
// /etc/subuid and /etc/subgid) on every command; joining costs a fork
// (forkjoin.go: userns.ForkExec), or, where that cannot be used, an
// nsenter and an unshare exec:
//
//	sandy ── nsenter --user=/proc/self/fd/3 --preserve-credentials   (fd 3: the pause's user namespace)
//	           └─execve─ unshare --mount --propagation unchanged
//	                       └─execve─ sandy-image ARGS   (uid 0 of the store's namespace, a fresh mount namespace)
//
// setns(2) into a user namespace needs a single-threaded caller, and Go
// programs are not: the fork's first child joins, or util-linux nsenter.
// The helper gets a mount namespace of its own, as it did with
// clone(CLONE_NEWUSER|CLONE_NEWNS): a copy of the caller's, made by
// unshare(2) (unshare(1) in the chain) once it has joined (the
// new mount namespace is then owned by the store's user namespace, so
// the helper may mount there). Its mounts (a root mounted to read
// /etc/passwd, a layer being committed) end with it, and the storage
// library's mount counts stay as they were: the pause holds no mount
// namespace, unlike podman's, and so pins none of the user's mounts (an
// unmounted USB stick stays busy in podman's) and misses none made later.
// With --preserve-credentials the helper keeps the caller's uid, which is
// 0 of the namespace, and its supplementary groups, as after the clone.
//
// The pause is sandy (or sandy-image) re-exec'd in PauseRole, started as
// a helper would be (clone(CLONE_NEWUSER) of the `sh` stub, the maps of
// idmap.Resolve written by newuidmap/newgidmap) and detached from its
// starter (userns.Config.Detach), in a session of its own, its cwd /, no
// fd open but stdio on /dev/null, an empty environment. It waits, and
// exits once its record no longer names it (PauseMain); `sandy system
// migrate` ends it. Its record, pause.pid
// in the default state root ($XDG_RUNTIME_DIR/sandy, whatever --root
// says: the namespace is the user's, not a state root's), holds its pid,
// start time, the boot id and its namespace's inode.
//
// A record is trusted only as far as the process it names passes every
// check of validPause, which a stale record (a reused pid, a reboot) and
// any process but sandy's own pause fail, a container's processes too,
// which run with the user's uid: its user namespace must be a child of
// the caller's, owned by the caller's uid, with exactly the maps
// idmap.Resolve decides now (so an edited /etc/subuid gets a new
// namespace), and the process must sit in the caller's mount and pid
// namespaces, where no container's process is. Creation is serialised by
// a lock (pause.lock): two commands starting at once make one pause.

// PauseRole is the pause process's hidden argv[1] (sandy's and
// sandy-image's).
const PauseRole = "_pause"

// pauseFiles are the record and the lock, in the default state root.
const (
	pauseFile = "pause.pid"
	pauseLock = "pause.lock"
)

// PauseMain is the pause process. Over the socket on fd 3 it reads the
// path of its record and reports its pid; it closes every fd from 3 on
// and waits, forever, but for a look at its record every pausePoll: once
// the record no longer names it (removed with the runtime directory at
// logout, replaced by another pause, or by `sandy system migrate`), it
// exits, so a forgotten pause does not linger. SIGTERM and SIGKILL end
// it; the terminal's signals are ignored.
func PauseMain() int {
	_ = unix.Chdir("/")
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2)
	sock := os.NewFile(3, "starter")
	var path []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(path, []byte("\n")) && len(path) < 4096 {
		n, err := sock.Read(buf)
		if err != nil {
			return 1
		}
		path = append(path, buf[:n]...)
	}
	_, err := fmt.Fprintf(sock, "%d\n", os.Getpid())
	_ = sock.Close()
	_ = unix.CloseRange(3, ^uint(0), 0)
	if err != nil {
		return 1
	}
	record := string(bytes.TrimSpace(path))
	for {
		time.Sleep(pausePoll)
		if !recordNames(record, os.Getpid()) {
			return 0
		}
	}
}

// pausePoll is how often a pause process looks at its record.
const pausePoll = 10 * time.Second

// recordNames reports whether the record at path names pid.
func recordNames(path string, pid int) bool {
	b, err := os.ReadFile(path)
	var rec pauseRecord
	return err == nil && json.Unmarshal(b, &rec) == nil && rec.Pid == pid
}

// pauseRecord is pause.pid's content.
type pauseRecord struct {
	Pid    int    `json:"pid"`
	Start  uint64 `json:"start"`  // /proc/PID/stat's starttime
	Boot   string `json:"boot"`   // /proc/sys/kernel/random/boot_id
	UserNS uint64 `json:"userns"` // the inode of its user namespace
	// Unusable says why joining the namespace failed when it was tried
	// at the start (joinProbe): the record then keeps later commands on
	// the old path without a new pause each.
	Unusable string `json:"unusable,omitempty"`
}

// storeNS is the store's user namespace, held by a pause process.
type storeNS struct {
	pid      int
	ns       *os.File // the user namespace, open: it cannot go away under nsenter
	created  bool
	unusable string // joining fails here: why (pauseRecord.Unusable)
}

func (s *storeNS) Close() { s.ns.Close() }

// pauseMaps reports whether a pause process is worth keeping for plan:
// its maps are written by newuidmap and newgidmap. (The single mapping,
// which the clone writes itself, costs nothing to make again.)
func pauseMaps(plan *idmap.Plan) bool {
	return plan.Helpers && !plan.Privileged && plan.Warning == ""
}

// joinStoreNS returns the store's user namespace held by a valid pause
// process, starting one when there is none. debug says what it found.
func joinStoreNS(plan *idmap.Plan, j joinCommand, debug func(string)) (*storeNS, error) {
	if !pauseMaps(plan) {
		return nil, errors.New("no subordinate ids to keep a namespace for (the single mapping is written without helpers)")
	}
	// pidfd_open(2) pins the recorded process across the checks.
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err != nil {
		return nil, fmt.Errorf("no pidfd_open (Linux 5.3+): %w", err)
	} else {
		unix.Close(fd)
	}
	s, err := findOrStartPause(plan, j, debug)
	if err == nil && s.unusable != "" {
		s.Close()
		return nil, fmt.Errorf("the pause process %d's namespace cannot be joined here: %s", s.pid, s.unusable)
	}
	return s, err
}

// StoreUserNS opens the store's user namespace for a container whose
// maps are plan's, to share instead of making a copy of it
// (userns.Config.SharedUserNS; podman's rootless containers share its
// pause process's the same way): the namespace of a valid pause process
// (validPause: the recorded process, in sandy's pause role, in the
// caller's mount and pid namespaces, its namespace the recorded one and
// the caller's, its maps plan's), not marked unusable. It never starts a
// pause process: nil, and why not, when there is none.
func StoreUserNS(plan *idmap.Plan) (*os.File, string) {
	if os.Geteuid() == 0 {
		return nil, "root's store is in the host's user namespace"
	}
	if plan == nil || !pauseMaps(plan) || !plan.RootIsCaller(uint32(os.Getuid())) {
		// keep-id's maps (the caller not 0), a privileged caller's, the
		// single mapping: not the store's shape. validPause compares the
		// rest with the pause's own maps.
		return nil, "the container's maps are not the store's (0 → the caller, 1..N → its subordinate ranges)"
	}
	root, err := state.OpenRoot(state.DefaultRoot())
	if err != nil {
		return nil, err.Error()
	}
	s, why := validPause(root.Dir, plan)
	if s == nil {
		return nil, why
	}
	if s.unusable != "" {
		s.Close()
		return nil, "its namespace cannot be joined here: " + s.unusable
	}
	return s.ns, ""
}

// findOrStartPause returns the namespace of a valid pause process,
// starting one when there is none.
func findOrStartPause(plan *idmap.Plan, j joinCommand, debug func(string)) (*storeNS, error) {
	root, err := state.OpenRoot(state.DefaultRoot())
	if err != nil {
		return nil, err
	}
	if s, _ := validPause(root.Dir, plan); s != nil {
		return s, nil
	}
	lock, err := os.OpenFile(filepath.Join(root.Dir, pauseLock), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the pause process's lock: %w", err)
	}
	defer lock.Close() // and unlocked
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	// Another command may have started one while we waited.
	s, why := validPause(root.Dir, plan)
	if s != nil {
		return s, nil
	}
	debug("store namespace: no pause process to join (" + why + "): starting one")
	stopStale(root.Dir)
	return startPause(root.Dir, plan, j)
}

// validPause opens the user namespace of the pause process that dir's
// record names, if every check passes; else it says which failed.
func validPause(dir string, plan *idmap.Plan) (*storeNS, string) {
	rec, err := readPauseRecord(dir)
	if err != nil {
		return nil, err.Error()
	}
	pidfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		return nil, fmt.Sprintf("pid %d: %v", rec.Pid, err)
	}
	defer unix.Close(pidfd)
	ns, why := checkPause(rec, plan)
	if ns == nil {
		return nil, why
	}
	// Everything read under /proc/PID was this process's if it still
	// runs now: a pid is not reused while its process lives.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		ns.Close()
		return nil, fmt.Sprintf("pid %d ended during the checks", rec.Pid)
	}
	return &storeNS{pid: rec.Pid, ns: ns, unusable: rec.Unusable}, ""
}

// readPauseRecord reads dir's pause.pid: a file of the caller's own that
// only the caller may write.
func readPauseRecord(dir string) (pauseRecord, error) {
	var rec pauseRecord
	f, err := os.OpenFile(filepath.Join(dir, pauseFile), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return rec, fmt.Errorf("no record: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return rec, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return rec, fmt.Errorf("%s is not a private file of uid %d", f.Name(), os.Geteuid())
	}
	data := make([]byte, 4096)
	n, _ := f.Read(data)
	if err := json.Unmarshal(data[:n], &rec); err != nil || rec.Pid <= 0 {
		return rec, fmt.Errorf("%s: not a pause record", f.Name())
	}
	if rec.Boot != bootID() {
		return rec, errors.New("the record is from an earlier boot")
	}
	return rec, nil
}

// checkPause checks the process rec names, and returns its user
// namespace, open, when it is the pause process rec recorded, in a user
// namespace that is the caller's to use for the store: with plan's maps,
// unless plan is nil.
func checkPause(rec pauseRecord, plan *idmap.Plan) (*os.File, string) {
	proc := "/proc/" + strconv.Itoa(rec.Pid)
	start, st, err := state.ProcStart(rec.Pid)
	if err != nil || st == "Z" || start != rec.Start {
		return nil, fmt.Sprintf("pid %d is not the recorded pause process (another start time, or gone)", rec.Pid)
	}
	if !isPauseCmdline(proc) {
		return nil, fmt.Sprintf("pid %d is not in sandy's pause role", rec.Pid)
	}
	// Where no container's process is: the caller's own mount and pid
	// namespaces.
	for _, kind := range []string{"mnt", "pid"} {
		if state.NSIno(proc+"/ns/"+kind) != state.NSIno("/proc/self/ns/"+kind) {
			return nil, fmt.Sprintf("pid %d is in another %s namespace than this process", rec.Pid, kind)
		}
	}
	ns, err := os.Open(proc + "/ns/user")
	if err != nil {
		return nil, fmt.Sprintf("opening the user namespace of pid %d: %v", rec.Pid, err)
	}
	if why := checkUserNS(ns, rec); why != "" {
		ns.Close()
		return nil, fmt.Sprintf("pid %d: %s", rec.Pid, why)
	}
	if plan == nil {
		return ns, ""
	}
	for _, m := range []struct {
		file string
		want []specs.LinuxIDMapping
	}{{"uid_map", plan.UIDs}, {"gid_map", plan.GIDs}} {
		data, err := os.ReadFile(proc + "/" + m.file)
		got, perr := idmap.ParseProcMap(m.file, string(data))
		if err != nil || perr != nil || !slices.Equal(got, m.want) {
			ns.Close()
			return nil, fmt.Sprintf("pid %d's %s is %q, not %q (subordinate ids changed?)", rec.Pid, m.file, idmap.FormatMap(got), idmap.FormatMap(m.want))
		}
	}
	return ns, ""
}

// checkUserNS checks the namespace itself, through its open fd
// (ioctl_ns(2)): the recorded one, a child of the caller's user
// namespace, owned by the caller's uid.
func checkUserNS(ns *os.File, rec pauseRecord) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &st); err != nil || st.Ino != rec.UserNS {
		return "another user namespace than the recorded one"
	}
	if owner, err := unix.IoctlGetUint32(int(ns.Fd()), unix.NS_GET_OWNER_UID); err != nil || int(owner) != os.Geteuid() {
		return fmt.Sprintf("its user namespace is not owned by uid %d", os.Geteuid())
	}
	parent, err := unix.IoctlRetInt(int(ns.Fd()), unix.NS_GET_PARENT)
	if err != nil {
		return fmt.Sprintf("its user namespace's parent: %v", err)
	}
	defer unix.Close(parent)
	if err := unix.Fstat(parent, &st); err != nil || st.Ino != state.NSIno("/proc/self/ns/user") {
		return "its user namespace is not a child of this process's"
	}
	return ""
}

// isPauseCmdline reports whether the process's argv is a pause's:
// "sandy _pause" (argv[0] may be either binary's name).
func isPauseCmdline(proc string) bool {
	b, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	return len(args) == 2 && args[1] == PauseRole
}

// bootID is this boot's id: a record of an earlier boot names nothing.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return string(bytes.TrimSpace(b))
}

// stopStale ends the pause process dir's record names, when it is a pause
// of this user that no longer fits (its maps predate an edit of
// /etc/subuid): commands that joined it keep its namespace while they run.
// Anything else the record names is left alone.
func stopStale(dir string) {
	rec, err := readPauseRecord(dir)
	if err != nil {
		return
	}
	_ = endPause(rec)
}

// endPause sends SIGTERM to the process rec names if it passes
// checkPause but the maps (a sandy pause of this user, in the caller's
// namespaces, in a user namespace of the caller's): never to another
// process that the record names.
func endPause(rec pauseRecord) error {
	pidfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	ns, why := checkPause(rec, nil)
	if ns == nil {
		return errors.New(why)
	}
	ns.Close()
	return unix.PidfdSendSignal(pidfd, unix.SIGTERM, nil, 0)
}

// pauseStartTimeout bounds the wait for a new pause process's report.
const pauseStartTimeout = 10 * time.Second

// startPause starts a pause process holding a new user namespace with
// plan's maps, records it in dir and returns its namespace. The caller
// holds the lock.
func startPause(dir string, plan *idmap.Plan, j joinCommand) (*storeNS, error) {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("opening this binary for the pause process: %w", err)
	}
	defer exe.Close()
	// A socket: the record's path goes to the pause, its pid comes back.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("making the pause process's socket: %w", err)
	}
	_ = unix.SetNonblock(fds[0], true) // for the read deadline
	r, w := os.NewFile(uintptr(fds[0]), "pause"), os.NewFile(uintptr(fds[1]), "pause")
	defer r.Close()
	if _, err := fmt.Fprintf(r, "%s\n", filepath.Join(dir, pauseFile)); err != nil {
		w.Close()
		return nil, fmt.Errorf("writing to the pause process's socket: %w", err)
	}
	child, err := userns.Start(userns.Config{
		Exe:        exe,
		Args:       []string{PauseRole},
		Env:        []string{},
		Dir:        "/", // nothing of the user's mounts
		Cloneflags: syscall.CLONE_NEWUSER,
		ExtraFiles: []*os.File{w},
		CgroupFD:   -1,
		Setsid:     true,
		Maps:       plan,
		Detach:     true,
	})
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("starting the pause process: %w", err)
	}
	_ = child.Cmd.Wait() // the gate, which exits once the pause is forked
	_ = r.SetReadDeadline(time.Now().Add(pauseStartTimeout))
	buf := make([]byte, 32)
	n, err := r.Read(buf)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || perr != nil || pid <= 0 {
		return nil, fmt.Errorf("the pause process did not report its pid: %v", errors.Join(err, perr))
	}
	rec := pauseRecord{Pid: pid, Boot: bootID()}
	rec.Start, _, err = state.ProcStart(pid)
	if err != nil {
		return nil, fmt.Errorf("the pause process %d: %w", pid, err)
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("opening the pause process's user namespace: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &st); err != nil {
		ns.Close()
		return nil, err
	}
	rec.UserNS = st.Ino
	if err := j.probe(ns); err != nil {
		rec.Unusable = err.Error()
	}
	if err := writePauseRecord(dir, rec); err != nil {
		ns.Close()
		_ = endPause(rec)
		return nil, err
	}
	return &storeNS{pid: pid, ns: ns, created: true, unusable: rec.Unusable}, nil
}

// probe joins ns as a helper would, to run true(1): a join that fails
// here (setns(2) refused by a seccomp filter or an LSM) is found once,
// when the pause starts, not by every helper.
func (j joinCommand) probe(ns *os.File) error {
	if j.nsenter == "" {
		// The fork's join only: execJoined, which needs nsenter, is
		// not taken then.
		return probeFork(ns)
	}
	cmd := exec.Command(j.nsenter)
	cmd.Args = j.argv("/proc/self/fd/3", "true", nil)
	cmd.ExtraFiles = []*os.File{ns}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// writePauseRecord replaces dir's pause.pid with rec (a temporary file,
// then rename).
func writePauseRecord(dir string, rec pauseRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".pause-")
	if err != nil {
		return fmt.Errorf("recording the pause process: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, pauseFile))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("recording the pause process: %w", err)
	}
	return nil
}

// StopPause ends the user's pause process, if there is one (`sandy system
// migrate`): the next image command starts a new one, with the maps of
// /etc/subuid and /etc/subgid as they are then. It reports the pid it
// ended, 0 for none.
func StopPause() (int, error) {
	if os.Geteuid() == 0 {
		return 0, nil
	}
	root, err := state.OpenRoot(state.DefaultRoot())
	if err != nil {
		return 0, err
	}
	lock, err := os.OpenFile(filepath.Join(root.Dir, pauseLock), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening the pause process's lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	rec, err := readPauseRecord(root.Dir)
	if err != nil {
		return 0, nil
	}
	pid := 0
	if endPause(rec) == nil {
		pid = rec.Pid
	}
	if err := os.Remove(filepath.Join(root.Dir, pauseFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return pid, fmt.Errorf("removing the pause record: %w", err)
	}
	return pid, nil
}
