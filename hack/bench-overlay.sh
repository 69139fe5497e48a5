#!/bin/sh
# bench-overlay.sh: the rootfs numbers of docs/rootfs.md, side by side.
#
#   startup  time spent in overlay.Mount per rung (bind, overlay, fuse, copy),
#            busybox rootfs, median of 15 runs, and what each adds over bind
#   io       512 MiB written in 1 MiB writes + fsync, and 5000 files of 4 KiB
#            created then deleted: host dir vs kernel overlay vs fuse-overlayfs
#   big      a 1 GB rootfs owned by 64 subordinate ids, full subordinate map:
#            first vs second Mount per rung (no chown copy: both are
#            milliseconds; the copy rung shows what copying costs)
#
# sandy run is not wired to the overlay package yet, so this measures Mount
# directly: the integration test binary re-execs itself inside
# unshare --user --map-root-user --map-auto --mount --pid and calls Mount,
# the way the container init will.
#
# Usage: hack/bench-overlay.sh            (as root: runs as $SANDY_TEST_USER,
#                                          default sandytest; else as you)
set -eu
cd "$(dirname "$0")/.."
user=${SANDY_TEST_USER:-sandytest}
out=$(mktemp -d /tmp/sandy-bench-overlay.XXXXXX)
chmod 0755 "$out"
trap 'rm -rf "$out"' EXIT
CGO_ENABLED=0 go test -c -tags integration -o "$out/overlay.test" ./overlay
chmod 0755 "$out/overlay.test"

run() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$user" -- env SANDY_OVERLAY_BENCH=1 TMPDIR=/tmp HOME=/tmp "$@"
	else
		env SANDY_OVERLAY_BENCH=1 "$@"
	fi
}

echo "# sandy rootfs benchmark: $(uname -r), $(nproc) cores, $(fuse-overlayfs --version 2>/dev/null | grep -m1 fuse-overlayfs || echo 'no fuse-overlayfs'), $(date -u +%FT%TZ)"
cd "$out"
run ./overlay.test -test.run '^(TestBenchStartup|TestBenchIO|TestBenchBigRootfs)$' -test.v -test.timeout 30m |
	grep -E '^(#|BENCH|---|FAIL|ok|PASS)' || true
