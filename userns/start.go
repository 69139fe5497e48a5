package userns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/moby/sys/capability"
	mobyuserns "github.com/moby/sys/userns"
	"golang.org/x/sys/unix"
)

// MapWriter writes the uid/gid maps of a child (idmap.Plan implements it).
type MapWriter interface {
	Apply(pid int) error
}

// KernelMapper is a MapWriter whose maps the caller may write itself, with
// no setuid helper: a privileged caller's (idmap.Plan when Privileged), or
// an unprivileged caller's single mapping of its own ids (setgroups then
// denied). Start then lets Go's clone write them (SysProcAttr.UidMappings)
// and makes the child uid and gid 0 of its namespace before it execs, so
// that it starts with its capabilities there: no gate, no GainCaps
// re-exec, even when the caller's own uid is not the one mapped to 0 (root
// mapping host ids 1000-2999, podman's keep-id); a child that is not uid 0
// in the namespace loses its capabilities at execve, and only root of the
// namespace can setuid(0).
type KernelMapper interface {
	MapWriter
	KernelMaps() (uids, gids []syscall.SysProcIDMap, setgroups, ok bool)
}

// RootMapper is a MapWriter that tells whether its maps make the caller's
// uid 0 of the namespace (idmap.Plan implements it). When they do not
// (podman's keep-id: the caller keeps its own uid, subordinate ids are 0),
// an execve once the maps are written gives the child no capabilities, and
// it cannot setuid(0) without them; Start then raises the child's
// capabilities into its ambient set before its first execve, while it
// still has them all in its new namespace (user_namespaces(7)), and the
// ambient set carries them over the execve of sandy
// (capabilities(7): a program without file capabilities run by a non-root
// uid gets the ambient set as permitted and effective). GainCaps then
// makes the child uid and gid 0 of its namespace and empties the ambient
// and inheritable sets, as a child that was root from the start has them.
type RootMapper interface {
	MapWriter
	RootIsCaller(uid uint32) bool
}

// Config describes a child to start in new namespaces.
type Config struct {
	Exe        *os.File // the sandy binary to exec (from SelfExe)
	Args       []string // argv after argv[0]
	Env        []string
	Cloneflags uintptr
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	// ExtraFiles become fd 3, 4, ... in the child; Exe is appended after them.
	ExtraFiles []*os.File
	// CgroupFD, when >= 0, puts the child into that cgroup at clone time
	// (CLONE_INTO_CGROUP), so it never runs outside it.
	CgroupFD int
	// Pdeathsig is sent to the child when the starting thread dies
	// (`sandy run`: the container dies with its runner).
	Pdeathsig syscall.Signal
	Setsid    bool
	Maps      MapWriter // nil: no new user namespace, or maps not wanted
	// Join lists namespaces to enter by path before the new ones are
	// made. Network, IPC, UTS and pid namespaces alone, with no new user
	// namespace, Start joins itself on a thread of its own, and the child
	// is an ordinary one (setns.go). Otherwise the child is started
	// through nsenter, and the spawn
	// helper when there are new ones too (see spawn.go), and Child.Cmd is
	// that chain, not the child (unless nsenter became the child: no pid
	// namespace to join and nothing new); the child comes back to the
	// caller, to wait for with Child.Wait once its pid is known (it
	// reports it) and Child.Adopt has run. Maps are not written by Start
	// then: the caller writes them for the pid the child reports.
	Join []Join
	// JoinAsRoot makes nsenter become uid and gid 0 of a joined user
	// namespace (setgroups, setgid, setuid there) instead of keeping the
	// caller's ids, for a caller whose own uid is not root in it (root
	// with mappings of other host ids): with the caller's ids the child
	// would start with no capabilities there.
	JoinAsRoot bool
	// Detach: the gate (the /bin/sh stub that waits for the maps) starts
	// Exe in the background and exits, instead of exec'ing it: the
	// process that runs Exe is then not the caller's child but an orphan,
	// reparented to init or the nearest child subreaper, for a long-lived
	// process that the caller must neither reap nor take down with it
	// (the image store's pause process). Child.Cmd is the gate: wait for
	// it; the process running Exe reports its own pid. It needs the gate
	// (Maps written by newuidmap/newgidmap and /bin/sh): Start fails
	// without it.
	Detach bool
	// Dir is the child's working directory; "" for the caller's.
	Dir string
	// AwaitsMaps: the child waits for the caller's word that its maps
	// are written before it relies on its ids, and then calls GainCaps
	// (the container's init: initproc's MsgMaps). Start then execs it at
	// once with its capabilities in the ambient set, also where the maps
	// make the caller 0, instead of holding its exec in the /bin/sh gate
	// until newuidmap and newgidmap have run: its Go start overlaps
	// them. Not with Detach, which needs the gate.
	AwaitsMaps bool
	// SharedUserNS, when set, is a user namespace whose maps are Maps'
	// (the image store's, which its pause process holds): the child is
	// forked into it instead of a new one being made and mapped
	// (shared.go). Where the fork cannot start the child as the config
	// asks, Start makes the new namespace; Child.SharedUserNS says which.
	SharedUserNS *os.File
}

// Child is a started child.
type Child struct {
	// Cmd is the process Start forked: the child itself, or with
	// Config.Join the chain that starts it: nsenter → spawn helper, which
	// exits as soon as the child runs, or a forking nsenter that is the
	// child's parent until Adopt ends it (direct).
	Cmd      *exec.Cmd
	spawned  bool
	direct   bool
	reaped   bool
	chain    error
	shared   bool   // started in Config.SharedUserNS
	unshared string // why not, when it was asked
}

// SharedUserNS reports whether the child was started in
// Config.SharedUserNS, and if not, why (when it was asked).
func (c *Child) SharedUserNS() (bool, string) { return c.shared, c.unshared }

// Spawned reports whether the child was started through a chain
// (Config.Join), so that Cmd is not the child.
func (c *Child) Spawned() bool { return c.spawned }

// ReapChain waits for the chain that started the child (a no-op without
// one) and returns how it ended. Before the child has reported, it waits
// for the chain to end by itself (a direct nsenter ends with the child);
// once the child has, call Adopt instead.
func (c *Child) ReapChain() error {
	if !c.spawned || c.reaped {
		return c.chain
	}
	c.reaped = true
	c.chain = c.Cmd.Wait()
	return c.chain
}

// Adopt makes the child, which has reported, the caller's own, also where
// it had to be reparented (spawn.go), and reaps the chain: call it before
// relying on that, e.g. before the child sets a parent-death signal, which
// reparenting would fire. A direct nsenter, which waits for the child it
// forked, is killed: its child is then reparented to the caller, a child
// subreaper (Start made it one); the spawn helper's chain ends by itself.
// A chain killed here ended as asked, so only the spawn helper's chain's
// end is returned.
func (c *Child) Adopt() error {
	if !c.spawned || c.reaped || !c.direct {
		return c.ReapChain()
	}
	_ = c.Cmd.Process.Kill()
	_ = c.ReapChain()
	c.chain = nil
	return nil
}

// Wait waits for the child, whose pid (in the caller's pid namespace) is
// pid, and returns its state.
func (c *Child) Wait(pid int) (*os.ProcessState, error) {
	if !c.spawned {
		err := c.Cmd.Wait()
		return c.Cmd.ProcessState, err
	}
	if pid <= 0 {
		err := c.ReapChain()
		return c.Cmd.ProcessState, err // the child never reported
	}
	if err := c.Adopt(); err != nil {
		return nil, err
	}
	return WaitSpawned(pid)
}

// Start execs cfg.Exe in new namespaces and, if cfg.Maps is set, writes its
// uid/gid maps. The child must not rely on its maps until the caller tells
// it over the sync socket that they are written.
func Start(cfg Config) (*Child, error) {
	if cfg.Exe == nil {
		return nil, errors.New("userns.Start: no executable")
	}
	if cfg.SharedUserNS != nil {
		c, reason, err := startShared(cfg)
		if c != nil || err != nil {
			return c, err
		}
		cfg.SharedUserNS = nil
		c, err = Start(cfg)
		if c != nil {
			c.unshared = reason
		}
		return c, err
	}
	files := append(append([]*os.File(nil), cfg.ExtraFiles...), cfg.Exe)
	exeFD := 3 + len(files) - 1
	exePath := fmt.Sprintf("/proc/self/fd/%d", exeFD)
	path, args := exePath, append([]string{"sandy"}, cfg.Args...)
	var gate *os.File
	var kernelMaps *syscall.SysProcAttr
	if km, ok := cfg.Maps.(KernelMapper); ok && len(cfg.Join) == 0 && cfg.Cloneflags&unix.CLONE_NEWUSER != 0 {
		if uids, gids, setgroups, ok := km.KernelMaps(); ok {
			kernelMaps = &syscall.SysProcAttr{UidMappings: uids, GidMappings: gids, GidMappingsEnableSetgroups: setgroups}
			if mapsZero(uids) && mapsZero(gids) {
				// NoSetGroups where setgroups(2) is denied.
				kernelMaps.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !setgroups}
			}
		}
	}
	var ambient []uintptr
	direct := false                 // nsenter starts the child itself: no spawn helper
	inProcess := joinInProcess(cfg) // Start joins them itself (setns.go)
	if rm, ok := cfg.Maps.(RootMapper); ok && kernelMaps == nil && len(cfg.Join) == 0 && cfg.Cloneflags&unix.CLONE_NEWUSER != 0 &&
		(!rm.RootIsCaller(uint32(os.Getuid())) || cfg.AwaitsMaps && !cfg.Detach) {
		var err error
		if ambient, err = newNSCaps(); err != nil {
			return nil, err
		}
	}
	switch {
	case kernelMaps != nil:
		// Written by the clone: no gate, no Apply.
	case ambient != nil:
		// sandy itself, with its capabilities in the ambient set: no
		// gate (it would gain nothing, and the child waits for its
		// maps itself), and no sh, which with capabilities would race
		// the maps: a shell that reads its uid before the uid map is
		// written (65534, unmapped) and its euid after (the caller's)
		// drops "privileges" with setuid(65534), which CAP_SETUID then
		// lets it do (dash's setprivileged).
	case inProcess:
		// No helper: the child is forked from a thread in the joined
		// namespaces (startJoined).
	case len(cfg.Join) > 0:
		nsenter, err := exec.LookPath("nsenter")
		if err != nil {
			return nil, fmt.Errorf("joining namespaces by path needs nsenter (apt-get install util-linux): %w", err)
		}
		if joinsPid(cfg.Join) {
			// The child may come to us as an orphan (spawn.go).
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				return nil, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
			}
		}
		// Stdio and the extra files pass through nsenter and the helper
		// at the same numbers; the binary's fd is the helper's own.
		direct = cfg.Cloneflags == 0
		argv := spawnArgv(nsenter, cfg.Join, !cfg.JoinAsRoot, exePath, cfg.Cloneflags, len(files), cfg.Args)
		path, args = nsenter, argv
		cfg.Cloneflags = 0
	case cfg.Maps != nil && cfg.Cloneflags&unix.CLONE_NEWUSER != 0 && shAvailable():
		// The gate: /bin/sh waits for the maps, then execs sandy, which
		// starts as uid 0 of its namespace with every capability: the
		// re-exec that GainCaps would do costs a Go runtime start-up
		// (10-25 ms on a small VM), sh's wait costs about one.
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		gate = w
		files = append(files, r)
		gateFD := 3 + len(files) - 1
		path = shPath
		script := `read -r _ <&%d && exec "$0" "$@"`
		if cfg.Detach {
			// An asynchronous list: sh forks, the fork execs Exe, sh
			// exits (its stdin /dev/null, SIGINT and SIGQUIT ignored:
			// POSIX's asynchronous lists without job control).
			script = `read -r _ <&%d && { "$0" "$@" & }`
		}
		args = append([]string{"sh", "-c", fmt.Sprintf(script, gateFD), exePath}, cfg.Args...)
	}
	if cfg.Detach && gate == nil {
		return nil, errors.New("starting a detached process in a new user namespace: it needs /bin/sh and newuidmap/newgidmap")
	}
	cmd := &exec.Cmd{
		// The path is resolved by execve in the child, after the fds are in
		// place: the child runs the sealed copy, never a path a container
		// could have replaced.
		Path:       path,
		Args:       args,
		Dir:        cfg.Dir,
		Env:        cfg.Env,
		Stdin:      cfg.Stdin,
		Stdout:     cfg.Stdout,
		Stderr:     cfg.Stderr,
		ExtraFiles: files,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cfg.Cloneflags,
			Pdeathsig:  cfg.Pdeathsig,
			Setsid:     cfg.Setsid,
		},
	}
	if kernelMaps != nil {
		a := cmd.SysProcAttr
		a.UidMappings, a.GidMappings, a.GidMappingsEnableSetgroups = kernelMaps.UidMappings, kernelMaps.GidMappings, kernelMaps.GidMappingsEnableSetgroups
		a.Credential = kernelMaps.Credential
	}
	if ambient != nil {
		cmd.SysProcAttr.AmbientCaps = ambient
	}
	if cfg.CgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cfg.CgroupFD
	}
	var joinErr, err error
	if inProcess {
		joinErr, err = startJoined(cmd, cfg.Join)
	} else {
		err = cmd.Start()
	}
	if joinErr != nil {
		return nil, fmt.Errorf("starting the container init: %w", joinErr)
	}
	if err != nil {
		if gate != nil {
			gate.Close()
		}
		return nil, explainCloneError(err, cfg.Cloneflags)
	}
	c := &Child{Cmd: cmd, spawned: len(cfg.Join) > 0 && !inProcess}
	if direct {
		// With --no-fork nsenter is the child; else it forks it.
		c.spawned, c.direct = joinsPid(cfg.Join), joinsPid(cfg.Join)
	}
	if cfg.Maps != nil && len(cfg.Join) == 0 && kernelMaps == nil {
		err := cfg.Maps.Apply(cmd.Process.Pid)
		if err == nil && gate != nil {
			_, err = gate.Write([]byte("\n"))
		}
		if gate != nil {
			gate.Close()
		}
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, err
		}
	}
	return c, nil
}

// mapsZero reports whether id 0 of the namespace is mapped.
func mapsZero(m []syscall.SysProcIDMap) bool {
	for _, l := range m {
		if l.ContainerID == 0 && l.Size > 0 {
			return true
		}
	}
	return false
}

const shPath = "/bin/sh"

func shAvailable() bool { return unix.Access(shPath, unix.X_OK) == nil }

// explainCloneError adds the likely cause and fix to a clone failure, the
// way bubblewrap does.
func explainCloneError(err error, flags uintptr) error {
	hint := cloneHint(err, flags)
	err = fmt.Errorf("starting the container init: %w", err)
	if hint != "" {
		err = fmt.Errorf("%w\nhint: %s", err, hint)
	}
	return err
}

// cloneHint is the likely cause and fix of a clone failure, or "": the
// host's Limits' Diagnosis. The container start (explainCloneError) and
// `sandy doctor` (through Probe and Diagnose) print it.
func cloneHint(err error, flags uintptr) string {
	return hostLimits().Diagnose(err, flags, RealExe()).Hint
}

// GainCaps is called by the child once its maps are written. If the process
// lacks CAP_SYS_ADMIN in its user namespace, it re-execs /proc/self/exe with
// the same argv and environment plus marker, which gives the full
// capability set (see the package doc); it does not return then. When the
// capabilities are already there (second run, or no new user namespace) it
// returns nil; when they came in the ambient set (RootMapper), it first
// makes the process uid and gid 0 of its namespace (becomeRoot).
func GainCaps(marker string) error {
	if hasSysAdmin() {
		if ambientSysAdmin() {
			// Started with the ambient capabilities of a RootMapper
			// whose maps do not make the caller uid 0.
			return becomeRoot()
		}
		return nil
	}
	if os.Getenv(marker) != "" {
		return errors.New("still no CAP_SYS_ADMIN after re-exec: is uid 0 mapped in the user namespace?")
	}
	env := append(os.Environ(), marker+"=1")
	err := unix.Exec("/proc/self/exe", os.Args, env)
	return fmt.Errorf("re-exec to gain capabilities: %w", err)
}

func hasSysAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_ADMIN) != 0
}

// ambientSysAdmin reports whether CAP_SYS_ADMIN is in the ambient set:
// the child came through Start's ambient capabilities.
func ambientSysAdmin() bool {
	set, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, unix.CAP_SYS_ADMIN, 0, 0)
	return err == nil && set == 1
}

// becomeRoot makes a child that holds its capabilities through the
// ambient set uid and gid 0 of its namespace, as a child whose maps make
// the caller root is after its execve: then files it makes (mount points,
// /dev) belong to the namespace's root, as runc's and crun's init make
// them. setresgid(2) first, while CAP_SETGID is effective; from a nonzero
// uid to 0 keeps the permitted set and copies it to the effective one
// (capabilities(7), "Effect of user ID changes on capabilities"). The
// ambient and inheritable sets are emptied after: nothing the init execs
// later inherits them unless the config asks (Go's syscall.Setresuid
// changes every thread, AllThreadsSyscall; sandy has no cgo).
func becomeRoot() error {
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("setresgid(0): %w (is gid 0 mapped in the user namespace?)", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("setresuid(0): %w (is uid 0 mapped in the user namespace?)", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing the inheritable capabilities: %w", err)
	}
	return nil
}

// newNSCaps lists every capability the kernel has (0 through
// cap_last_cap): what a child cloned into a new user namespace holds, its
// bounding set full there (user_namespaces(7)) whatever the caller's
// bounding set lacks, and what the execve of root of that namespace would
// give it. So the child raises them all into its ambient set. (The
// caller's own bounding set is not the measure: a host whose bounding set
// lacks CAP_SYS_RESOURCE, as this project's machines do, left the init
// without it, and a config asking for it failed with "setting
// capabilities: operation not permitted", where the gate's root execve
// gave it.)
func newNSCaps() ([]uintptr, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("reading the highest capability number: %w", err)
	}
	caps := make([]uintptr, 0, int(last)+1)
	for c := 0; c <= int(last); c++ {
		caps = append(caps, uintptr(c))
	}
	return caps, nil
}

// InUserNS reports whether this process runs in a user namespace other
// than the initial one. It is moby/sys/userns's answer (the inode of
// /proc/self/ns/user against the kernel's PROC_USER_INIT_INO, the uid_map
// where namespace inodes are virtualised), computed once per process.
func InUserNS() bool { return mobyuserns.RunningInUserNS() }

// CloneNewUser is CLONE_NEWUSER, for callers that need only a user namespace.
const CloneNewUser = unix.CLONE_NEWUSER

// Join is a namespace to join by path.
type Join struct {
	Flag string // nsenter's option: "user", "net", "ipc", "uts", "pid", "cgroup", "time"
	Path string // a namespace file, e.g. /proc/PID/ns/net or /proc/self/fd/N
}
