// Package attach is a detached container's attach socket, both sides: the
// server that the container's monitor (internal/containers, conmon's job)
// serves in the container's directory, and the client that `sandy attach`
// and `sandy start -a` connect with.
//
// The socket is a unix SOCK_SEQPACKET socket (as conmon's): each packet is
// one message, its first byte the kind, the rest the payload, so that
// stdout and stderr stay apart and a message is never split or merged:
//
//	monitor → client  2 stdout data | 3 stderr data (the pty's output, under -t)
//	                  6 exit: the exit status (int32, big endian), once recorded
//	client → monitor  1 stdin data
//	                  4 stdin EOF: the container's stdin is closed (without -t)
//	                  5 resize: rows, cols (uint16 each, big endian): TIOCSWINSZ
//
// Kinds 1-3 are conmon's numbers. A payload is at most MaxPayload bytes;
// the sender splits longer data. The monitor hangs up on a client that
// sends anything else (an unknown kind, a short resize, a packet longer
// than a message can be): garbage ends that client, never the monitor.
//
// What the server guarantees the monitor: it never blocks the copy of the
// container's output. Each client has a queue bounded in bytes (8 MiB),
// in which the output that waits is merged into full packets. When it is
// full, a client that still reads (a packet went through in the last
// second) misses the output that does not fit (the log has it); one that
// does not (a suspended `sandy attach`, a full pipe) is disconnected. The
// others and the log go on. A client sees the output from the moment it attaches (the log has
// the history: sandy logs). Only the user may connect: the socket is
// created 0600 in the container's directory (0700), and a peer whose
// credentials (SO_PEERCRED) are another user's is hung up on.
//
// The client side (Session) copies stdin to the socket, watching for the
// detach keys (ParseDetachKeys: podman's ctrl-p,ctrl-q format), and the
// output to stdout and stderr; raw mode, signals and the record are the
// caller's (cmd/sandy, internal/containers).
package attach
