//go:build linux

package usernet

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// icmpFilter is the tap's link endpoint with one check on the way in:
// ICMP addressed to anything but the stack's own two addresses
// (10.0.2.2/31) does not reach the stack: echo requests to the outside
// go to ping (ping.go), the rest is dropped. In promiscuous mode the
// stack takes every destination as its own, and would answer a ping to
// any address: the container would see hosts up that nothing was sent
// to. (gVisor's iptables could drop it too, but turning them on costs
// 650 kB of connection tracking per network, BenchmarkNew.)
type icmpFilter struct {
	nested.Endpoint
	ping *pinger
}

func newICMPFilter(child stack.LinkEndpoint, ping *pinger) *icmpFilter {
	f := &icmpFilter{ping: ping}
	f.Endpoint.Init(child, f)
	return f
}

// DeliverNetworkPacket implements stack.NetworkDispatcher: the link
// endpoint's delivery of one frame's packet (the caller keeps its
// reference: a packet not passed on is simply dropped).
func (f *icmpFilter) DeliverNetworkPacket(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if protocol == ipv4.ProtocolNumber && foreignICMP(pkt) {
		f.ping.request(pkt)
		return
	}
	f.Endpoint.DeliverNetworkPacket(protocol, pkt)
}

// foreignICMP reports whether pkt, an IPv4 packet, is ICMP to an address
// outside 10.0.2.2/31; a packet too short for its header is the stack's
// to reject.
func foreignICMP(pkt *stack.PacketBuffer) bool {
	b, ok := pkt.Data().PullUp(header.IPv4MinimumSize)
	if !ok {
		return false
	}
	ip := header.IPv4(b)
	if ip.TransportProtocol() != header.ICMPv4ProtocolNumber {
		return false
	}
	dst := ip.DestinationAddress().As4()
	dst[3] &^= 1
	return dst != gateway.As4()
}
