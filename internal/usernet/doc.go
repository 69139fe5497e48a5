// Package usernet is a user-mode network for a rootless container, in
// the calling Go process (sandy-net): gVisor's TCP/IP stack (gvisor.dev/gvisor
// pkg/tcpip, the stack podman machine's gvproxy runs) on the host end
// of the container's tap device, translating the container's TCP and
// UDP flows into the caller's own sockets, as slirp4netns(1) does in a
// process of its own.
//
// # Why
//
// slirp4netns is a C program with glib, libslirp and libseccomp: on the
// machines sandy is measured on, its exec, dynamic linking and start
// take about 2.4 ms before the container may run, +30 % on a `sandy run`
// of /bin/true (issue 14's target is +20 %). sandy-net, a static Go
// program started before the container's init is forked, that takes
// the tap from the init instead of forking a child to open it, costs
// the run about 2 ms. It is also memory-safe code parsing the
// container's packets, where libslirp has had memory-safety CVEs
// (CVE-2019-14378, CVE-2020-7039, CVE-2021-3592 to 3595).
//
// # What it is
//
// The addresses are slirp4netns --configure's, so that the files the
// lifecycle writes into the container (slirp.ResolvConf, slirp.Hosts)
// hold for both:
//
//	10.0.2.100/24  the container (tap0, configured by its caller)
//	10.0.2.2       the gateway; with Config.HostLoopback, the host's
//	               127.0.0.1 (slirp4netns without --disable-host-loopback)
//	10.0.2.3       DNS: UDP and TCP port 53 go to Config.DNS (by default
//	               /etc/resolv.conf's nameservers)
//
// Every other IPv4 destination is dialed from the caller's process, as
// the caller: a TCP connection of the container's is accepted once the
// host's dial succeeds and refused (RST) when it fails; a UDP flow gets
// a host socket connected to its destination, closed after UDPIdle
// without traffic (DNSIdle, 10 s, for a flow to port 53).
//
// Published ports (-p) come the other way (Publish, publish.go): the
// caller hands over host sockets it bound, and each connection or UDP
// client on one is dialed from inside the stack to 10.0.2.100, from the
// client's own address when it is Routable (the container sees a LAN
// client as itself), else from 10.0.2.2 with the client's port.
//
// # What it refuses (security)
//
// The container is untrusted, and with CAP_NET_RAW in its user
// namespace it writes any frame it likes to tap0. So the translation
// decides by destination alone, never by what the container's routing
// would have done:
//   - loopback (127.0.0.0/8), "this network" (0.0.0.0/8), multicast,
//     broadcast and the rest of 10.0.2.0/24 are never dialed: a frame
//     addressed to 127.0.0.1 must not reach the host's loopback when
//     HostLoopback is off;
//   - 10.0.2.2 reaches 127.0.0.1 only with HostLoopback;
//   - at most Config.MaxFlows TCP connections and UDP flows at once, and
//     at most MaxInFlight connection attempts: a flood of SYNs or UDP
//     sources is dropped, not turned into host sockets without bound.
//
// Refused TCP gets a RST and refused UDP an ICMP port unreachable, from
// the stack. IPv6 is not translated (no IPv6 in the stack: the container
// gets none, as with slirp4netns without --enable-ipv6). ICMP to
// addresses other than 10.0.2.2 and 10.0.2.3 never reaches the stack
// (icmpFilter): echo requests to a Routable address are sent from the
// host's ICMP sockets instead (ping.go), and the rest is dropped.
//
// # Who calls it
//
// sandy-net (internal/cmd/sandy-net), through Serve: sandy starts it for
// `sandy run`'s default network (and --network=usernet), the
// container's init sends it tap0 (initproc.RawTap), and it serves the
// tap until its lifeline ends (sandy closed it, or handed over the
// init's pidfd and the init exited). sandy itself does not link this
// package: its package inits and memory would be every sandy process's
// (docs/design.md, "A network without slirp4netns").
package usernet
