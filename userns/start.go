package userns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

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
	// made. The child is then started through nsenter and the spawn helper
	// (see spawn.go) and Child.Cmd is that chain, not the child; the child
	// is still the caller's child (CLONE_PARENT), to wait for with
	// Child.Wait once its pid is known (it reports it). Maps are not written
	// by Start then: the caller writes them for the pid the child reports.
	Join []Join
	// JoinAsRoot makes nsenter become uid and gid 0 of a joined user
	// namespace (setgroups, setgid, setuid there) instead of keeping the
	// caller's ids, for a caller whose own uid is not root in it (root
	// with mappings of other host ids): with the caller's ids the child
	// would start with no capabilities there.
	JoinAsRoot bool
}

// Child is a started child.
type Child struct {
	// Cmd is the process Start forked: the child itself, or with
	// Config.Join the nsenter → spawn helper chain, which exits as soon as
	// the child runs.
	Cmd     *exec.Cmd
	spawned bool
	reaped  bool
	chain   error
}

// Spawned reports whether the child was started through the spawn helper
// (Config.Join), so that Cmd is not the child.
func (c *Child) Spawned() bool { return c.spawned }

// ReapChain waits for the nsenter → spawn helper chain (a no-op without
// one) and returns how it ended. Once it returns, the child is the
// caller's own, also where it had to be reparented (spawn.go): call it
// before relying on that, e.g. before the child sets a parent-death
// signal, which reparenting would fire.
func (c *Child) ReapChain() error {
	if !c.spawned || c.reaped {
		return c.chain
	}
	c.reaped = true
	c.chain = c.Cmd.Wait()
	return c.chain
}

// Wait waits for the child, whose pid (in the caller's pid namespace) is
// pid, and returns its state.
func (c *Child) Wait(pid int) (*os.ProcessState, error) {
	if !c.spawned {
		err := c.Cmd.Wait()
		return c.Cmd.ProcessState, err
	}
	err := c.ReapChain()
	if pid <= 0 {
		return c.Cmd.ProcessState, err // the child never reported
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
	switch {
	case kernelMaps != nil:
		// Written by the clone: no gate, no Apply.
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
		args = append([]string{"sh", "-c", fmt.Sprintf(`read -r _ <&%d && exec "$0" "$@"`, gateFD), exePath}, cfg.Args...)
	}
	cmd := &exec.Cmd{
		// The path is resolved by execve in the child, after the fds are in
		// place: the child runs the sealed copy, never a path a container
		// could have replaced.
		Path:       path,
		Args:       args,
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
	if cfg.CgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cfg.CgroupFD
	}
	if err := cmd.Start(); err != nil {
		if gate != nil {
			gate.Close()
		}
		return nil, explainCloneError(err, cfg.Cloneflags)
	}
	c := &Child{Cmd: cmd, spawned: len(cfg.Join) > 0}
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
// returns nil.
func GainCaps(marker string) error {
	if hasSysAdmin() {
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
