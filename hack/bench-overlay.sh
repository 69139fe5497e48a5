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
#   run      end to end, when ./cmd/sandy builds and runs: wall time of
#            `sandy run --network=none --rootfs-mode=M` of `true` (busybox, writable
#            root), median of 11, per rung
#
# The first three measure Mount directly: the integration test binary
# re-execs itself inside unshare --user --map-root-user --map-auto --mount
# --pid and calls Mount, the way the container init does. That isolates the
# rung's cost from the rest of sandy's start-up.
#
# Usage: hack/bench-overlay.sh            (as root: runs as $SANDY_TEST_USER,
#                                          default sandytest; else as you)
set -eu
cd "$(dirname "$0")/.."
repo=$PWD
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
CGO_ENABLED=0 go build -o "$out/sandy" ./cmd/sandy 2>/dev/null || echo "# sandy does not build: no end-to-end figures"
chmod -R a+rX "$out"
cd "$out"
run ./overlay.test -test.run '^(TestBenchStartup|TestBenchIO|TestBenchBigRootfs)$' -test.v -test.timeout 30m |
	grep -E '^(#|BENCH|---|FAIL|ok|PASS)' || true

[ -x "$out/sandy" ] || exit 0
mkdir "$out/e2e"
[ "$(id -u)" = 0 ] && chown "$user" "$out/e2e"
run sh -ec '
out=$1
export XDG_RUNTIME_DIR="$out/e2e/xdg"; mkdir -p "$XDG_RUNTIME_DIR"; chmod 0700 "$XDG_RUNTIME_DIR"
SANDY="$out/sandy" "$2/hack/mkbundle.sh" "$out/e2e/bundle" true >/dev/null
sed -i "s/\"readonly\": true/\"readonly\": false/" "$out/e2e/bundle/config.json"
echo "## end to end: sandy run --network=none of true, writable root (median of 11, rungs interleaved, load $(cut -d" " -f1 /proc/loadavg))"
modes="direct bind overlay fuse copy"
for i in $(seq 11); do
	for mode in $modes; do
		s=$(date +%s%N)
		if "$out/sandy" run --network=none --rootfs-mode=$mode "$out/e2e/bundle" >/dev/null 2>&1; then
			e=$(date +%s%N)
			echo $(( (e - s) / 100000 )) >>"$out/e2e/$mode.times"
		else
			echo fail >>"$out/e2e/$mode.times"
		fi
	done
done
for mode in $modes; do
	if grep -q fail "$out/e2e/$mode.times"; then
		echo "BENCH run $mode: sandy run failed"
		continue
	fi
	med=$(sort -n "$out/e2e/$mode.times" | sed -n 6p)
	echo "BENCH run $mode $(( med / 10 )).$(( med % 10 )) ms"
done
' sh "$out" "$repo"
