// Package ctrlog writes and reads a container's log in podman's k8s-file
// format (conmon's ctr_logging.c, the CRI's log format): one entry a line,
//
//	2024-01-01T00:00:00.000000000+00:00 stdout F a whole line
//	2024-01-01T00:00:00.000000000+00:00 stderr P the start of a line
//
// a timestamp in RFC 3339 with nanoseconds and a numeric zone, the stream,
// F for a full line (its newline dropped) or P for a partial one (the
// output so far of a line not yet ended: the next entries of that stream
// continue it), and the text. A Writer is what the container's monitor
// writes the container's stdout and stderr with; Read is what `sandy
// logs` prints them back with, without the prefix (or with the timestamp
// under -t), the last N lines (--tail) and those since a time (--since).
// The reader holds at most MaxLine of a line: a container's output with
// no newline (all of it, if it never prints one) is handed on in pieces.
//
// It is a leaf: it knows nothing of containers, files, rotation or
// following; the caller opens the files (--log-opt max-size rotates them:
// containers' logFile) and polls them (containers.Manage.Logs). Pure but for the
// clock the Writer is given.
package ctrlog
