//go:build linux

package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
)

// Env is where doctor reads the machine and how it tries things: the
// paths of the files it reads and the probes it runs. HostEnv is the real
// machine; tests fill in fakes (a missing subuid entry,
// max_user_namespaces=0, an AppArmor restriction, an unreadable
// /dev/fuse, a probe that fails with EPERM) and check the rows and the fix
// script, without touching the host. There is no way to set one from the
// command line or the environment: a real run always reads the real host.
type Env struct {
	Root    string // "/": systemd and the user bus unit under it (cgroupv2.ReadSession)
	Etc     string // "/etc": subuid, subgid, os-release
	ProcSys string // "/proc/sys"
	Status  string // "/proc/self/status": a seccomp filter on this process
	Dev     string // "/dev": fuse, net/tun

	LookPath func(string) (string, error) // newuidmap, newgidmap, fuse-overlayfs, slirp4netns
	// NetProgram finds sandy-net, sandy's own network's program
	// (lifecycle.LocateNetProgram).
	NetProgram func() (string, error)
	// Probe runs this binary's hidden role args in a throwaway user and
	// mount namespace (plus extra clone flags): userns.ProbeFlags.
	Probe func(extra uintptr, args ...string) ([]byte, error)
	// PingSocket opens and closes an ICMP echo socket (slirp.PingSocket).
	PingSocket func() error
	// Linger asks systemd-logind whether the user lingers
	// (cgroupv2.Linger); an error wrapping cgroupv2.ErrNoLogind: no logind.
	Linger func() (bool, error)
	// Cgroup walks the cgroup manager ladder for real
	// (cgroupv2.ProbeScope: a no-op transient scope on the user bus).
	Cgroup func() cgroupv2.Choice
	// ImageStore runs the image helper's store probe
	// (imagehelper.ProbeStore); an error wrapping ErrNoImageHelper: the
	// helper is not installed.
	ImageStore func() (imagehelper.StoreInfo, error)

	UID, GID uint32
	Groups   []uint32 // the effective gid and the supplementary groups
	User     string   // login name, or the numeric uid
	// Privileged: may write any id map itself (idmap.CanMapAny).
	Privileged bool
	Exe        string // the binary's real path (userns.RealExe)
}

// ErrNoImageHelper: sandy-image is not installed beside sandy.
var ErrNoImageHelper = errors.New("no image helper")

// HostEnv is the real machine, as the calling process sees it. The ids,
// the user name and Privileged are idmap.CallerRequest's, as run's.
func HostEnv() Env {
	req := idmap.CallerRequest()
	e := Env{Root: "/", Etc: "/etc", ProcSys: "/proc/sys", Status: "/proc/self/status", Dev: "/dev",
		LookPath:   exec.LookPath,
		NetProgram: lifecycle.LocateNetProgram,
		Probe: func(extra uintptr, args ...string) ([]byte, error) {
			return userns.ProbeFlags(extra, "/proc/self/exe", args...)
		},
		PingSocket: slirp.PingSocket,
		Linger: func() (bool, error) {
			return cgroupv2.Linger(cgroupv2.SystemBusSocket, uint32(os.Getuid()))
		},
		Cgroup: probeCgroup,
		ImageStore: func() (imagehelper.StoreInfo, error) {
			helper, err := imagehelper.Locate()
			if err != nil {
				return imagehelper.StoreInfo{}, fmt.Errorf("%w: %v", ErrNoImageHelper, err)
			}
			return imagehelper.ProbeStore(helper, 20*time.Second)
		},
		UID: req.UID, GID: req.GID, User: req.User, Privileged: req.Privileged,
		Exe: userns.RealExe(),
	}
	e.Groups = []uint32{uint32(os.Getegid())}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			if !slices.Contains(e.Groups, uint32(g)) {
				e.Groups = append(e.Groups, uint32(g))
			}
		}
	}
	return e
}

// scopeTimeout bounds the scope probe: dialling the bus, starting and
// stopping the scope are each bounded by cgroupv2's own timeouts too.
const scopeTimeout = 10 * time.Second

// probeCgroup runs cgroupv2.ProbeScope. The process in its scope is this
// binary's sentinel role, which waits for EOF on stdin (and dies with
// doctor: Pdeathsig); the scope's stop ends it with SIGTERM.
func probeCgroup() cgroupv2.Choice {
	ctx, cancel := context.WithTimeout(context.Background(), scopeTimeout)
	defer cancel()
	return cgroupv2.ProbeScope(ctx, startSentinel)
}

func startSentinel() (int, func(), error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command("/proc/self/exe", lifecycle.SentinelRole)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return 0, nil, err
	}
	return cmd.Process.Pid, func() { w.Close(); _ = cmd.Wait() }, nil
}

func (e *Env) etc(name string) string { return filepath.Join(e.Etc, name) }
func (e *Env) dev(name string) string { return filepath.Join(e.Dev, name) }
