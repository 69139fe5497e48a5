// Package slirp gives a rootless container's network namespace a user-mode
// network through slirp4netns(1) and forwards host ports into it through
// the two port drivers of rootlesskit v3, builtin and slirp4netns, whose
// host halves are this package's (portdriver.go says why). It runs on the host side, as the user's
// real uid, never inside the container's user namespace, except for the
// one small port child described below.
//
// It does not configure links itself (slirp4netns --configure does, so no
// ip(8)), does not decide whether a container gets a network (the lifecycle
// does: `sandy run --network=slirp4netns|none|host`), and does not write
// files into the container (the init writes ResolvConf and Hosts).
//
// # Who calls it
//
// internal/lifecycle, after the container's init has been cloned into its
// namespaces and its uid/gid maps are written:
//
//	n, err := slirp.Launch(ctx, slirp.Options{PID: initPID, Ports: ports, StateDir: dir, Exe: sealed})
//	... the init sets up the root filesystem meanwhile ...
//	err = n.Ready(ctx)   // before the container's process may run
//	... on teardown: n.Close(), or slirp.Stop(dir) from `sandy delete`,
//	... or, in-process, pidfds := n.Abandon() and slirp.EndProcesses(pidfds)
//	    in a reaper, so that the caller need not wait for slirp4netns to exit
//
// Start is Launch followed by Ready. Check tells the lifecycle, before it
// clones anything, whether to fall back to loopback-only networking.
// `sandy doctor` uses Check too, and tries more: TunProbeMain (the hidden
// role TunProbeRole) makes the tap device in a throwaway user and network
// namespace, PingSocket and CheckPing say whether ping from a container
// gets answers (slirp4netns opens ICMP echo sockets as the caller, which
// net.ipv4.ping_group_range governs), and UnprivilegedPortStart is the
// lowest host port -p accepts.
//
// The caller owes two things (Security, below), and Launch refuses, with
// an error, rather than fall back: Exe, the handle on the protected sandy
// binary the init runs from (userns.SelfExe), and the slirp4netns port
// driver when the container shares the caller's pid namespace.
//
// # Processes
//
// Launch starts three processes at once, each in its own session and with
// "/" as working directory, and returns:
//
//	caller (sandy run / create)
//	 ├─ slirp4netns --configure --mtu=65520 --ready-fd=3 --exit-fd=4
//	 │      --api-socket=/proc/self/fd/5/slirp-api.sock --enable-seccomp
//	 │      [--disable-host-loopback] PID tap0
//	 ├─ nsenter -t PID -n [-U --preserve-credentials] --
//	 │      /proc/self/fd/3 slirp-port-child --socket=DIR/.bp.sock --ready-pipe=DIR/.bp-ready.pipe
//	 │      (builtin driver with at least one -p only; -U when the container
//	 │      has a user namespace other than the caller's)
//	 └─ /proc/self/fd/11 slirp-monitor --config=DIR/slirp.json --report-fd=3 ...
//
// where the fd is Exe, inherited: both run the sealed copy, not a path.
//
// DIR can be longer than a unix socket address holds (108 bytes: a 64-hex
// container id under a long $XDG_RUNTIME_DIR or --root). Every socket in
// it is then bound and dialed as /proc/self/fd/N/NAME through an O_PATH
// handle on DIR (sockPath, socketDir): slirp4netns through its fd 5, the
// port child and the monitor's control socket for the bind or connect,
// the monitor's port drivers for as long as the network lives.
//
// The monitor (RunMonitor) owns the network from its first instruction: it
// holds the only write end of slirp4netns' --exit-fd pipe and of the port
// child's stdin, so both exit whenever the monitor exits, kill -9 included.
// It runs the host half of the port driver, whose listeners are the host
// ports, and reports once slirp4netns has written its ready fd and every
// port listens. Then it waits, on pidfds (pidfd_open(2)), for the first of:
// the container's process exiting, a "stop" on DIR/monitor.sock (Stop, from
// any process), SIGTERM/SIGINT/SIGHUP, or slirp4netns or the port child
// dying. It closes the listeners, ends the other two, waits for them and
// removes its state files; only then does it exit, which is what Stop waits
// for. So the network lives exactly as long as the container's process,
// also after `sandy run --detach` or `sandy create` has exited, and
// `sandy delete` ends it with Stop. Starting the three at once rather than
// having the monitor start the other two takes one process start-up off
// the critical path.
//
// With Options.InProcess the owner is a goroutine of the caller instead of
// the monitor process: for `sandy run` in the foreground, whose process
// lives as long as the container anyway. That saves the monitor's start-up
// (about 13 ms on the test machine), and the network then ends when the
// caller exits, kill -9 included, as well as on everything above.
//
// # Why a port child, and why nsenter
//
// rootlesskit's builtin driver needs sockets connected inside the
// container's network namespace. A socket belongs to the namespace of the
// process that created it, so some process must live in that namespace.
// Entering it takes setns(CLONE_NEWNET), which requires CAP_SYS_ADMIN over
// the namespace's owner, the container's user namespace, so the process
// must first setns(CLONE_NEWUSER) into that; and setns(2) refuses
// CLONE_NEWUSER to a multi-threaded process, which every Go process is.
// sandy ships no cgo, so no constructor can do it before the Go runtime
// starts. The port child is therefore a fresh process: util-linux nsenter
// joins the user and network namespaces (and no others: it keeps the host's
// mount namespace, where the state directory is, and the host's pid
// namespace) and execs the sandy binary's hidden slirp-port-child
// subcommand. --preserve-credentials keeps the caller's uid, which is root
// inside, and skips setgroups(2), denied once an unprivileged user has
// written gid_map. Alternatives considered: a helper forked by the
// container's init (already in the namespaces, but then in the container's
// pid and mount namespaces too, visible to and killable by the container);
// the monitor itself living in the container's namespaces with listeners
// inherited from the host side (one process fewer, but host-side listeners
// owned by a process the container's root may ptrace, and the builtin
// driver's parent half could not be used).
//
// # The client's address
//
// The port child speaks rootlesskit's builtin protocol (package msg) but is
// our own code: for each connection the parent asks it for a socket
// connected to 127.0.0.1:containerPort and passes the client's address
// along. For a TCP client on the host's loopback (127.0.0.0/8, which is
// local in every network namespace) the child binds the client's own
// address and port before it connects, so the server in the container sees
// the real peer, 127.0.0.2:41234 rather than 127.0.0.1. That needs no
// privilege, no IP_TRANSPARENT and no firewall rules, which rootlesskit's
// own child installs with ip(8) and nft(8) and skips for loopback clients.
// Clients on other addresses, IPv6 clients and UDP are forwarded from
// 127.0.0.1; the slirp4netns driver always shows 10.0.2.2.
//
// # Security
//
// slirp4netns runs with --enable-seccomp and outside the container's user
// namespace except for the short-lived child that configures tap0. The port
// child runs the sandy binary inside the container's user namespace, in the
// host's mount and pid namespaces. It makes itself non-dumpable at once, but
// the container's root holds CAP_SYS_PTRACE over a process exec'ed inside
// its user namespace, so a container that can see the port child (one that
// shares the host's pid namespace) could ptrace it and reach the host's
// mount namespace through it. Sandy's containers get a new pid namespace;
// when a config shares the host's, the lifecycle must use the slirp4netns
// port driver, which has no process inside. Launch enforces it: the builtin
// driver with a port child is refused (ErrPortDriver) when the pid
// namespace of Options.PID is the caller's.
//
// Options.Exe is the binary the port child and the monitor run; it must be
// the same protected handle on sandy that the init runs (CVE-2019-5736): a
// sealed memfd (F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK), a file on a
// read-only overlayfs superblock (userns.SelfExe's view of a binary the
// caller can write, made by root or in a user namespace) or a file the
// caller cannot write. The caller's uid is the container's root on the
// host, so a binary the caller can write, reached through /proc/PID/exe of
// either helper, is one the container can rewrite for the next sandy run.
// Launch refuses a nil or writable handle and never falls back to
// os.Executable(). The handle goes to each child as an inherited fd that
// execve(2) opens as /proc/self/fd/N; the monitor, which outlives the
// caller, and the port child hold the protected handle for as long as they run,
// whatever happens to the caller's handle.
//
// # Throughput, and the bind bypass
//
// The builtin driver is a user-space proxy: every forwarded byte crosses two
// loopback TCP connections and a splice(2) in the monitor. On a two-core
// machine the client, the proxy and the server share two cores, which holds
// it near half the loopback floor (docs/networking.md has the numbers).
//
// The experimental bind bypass (Options.BindNotifier, InstallBindNotifier,
// bypass_linux.go) needs no proxy: a seccomp user-notification filter in
// the container reports bind(2), and the monitor swaps the container's
// socket for one bound in the host's namespace on the -p address
// (SECCOMP_IOCTL_NOTIF_ADDFD), as rootless-containers/bypass4netns does.
// Clients then reach the container's server directly, at the loopback
// floor, and the server sees every client's address. It is off unless the
// lifecycle passes a notifier, because the container then holds a socket of
// the host's network namespace: after connect(AF_UNSPEC) it can connect
// that socket anywhere the user can, host loopback included, which
// --disable-host-loopback otherwise forbids. Use it for trusted workloads.
package slirp
