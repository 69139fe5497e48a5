#!/usr/bin/env bash
# hack/vm/cri-tests.sh — sandy as containerd's RuntimeClass handler on a
# systemd + pure cgroup v2 node, in one boot of the VM (hack/vm/run.sh -m
# root): the CRI integration tests of cmd/sandy (cri_integration_test.go;
# a private rootful containerd from internal/testutil/crifix with
# SystemdCgroup = true, CNI, crictl), built on the host as one static test
# binary and run as root in the guest, as a node's containerd runs. There
# the tests take their cgroup v2 + systemd branch: the scopes in the pod's
# slice through the system's systemd, `crictl stats` from the container's
# cgroup, `crictl update` landing in memory.max and cpu.max, an OOM kill
# reported as OOMKilled, and no unit or cgroup left. Then `sandy doctor` as
# root must start its probe scope on the system's systemd.
#
#   hack/vm/cri-tests.sh                       # TestCRIPod
#   hack/vm/cri-tests.sh -test.run 'CRIPod$|CRIPodChurn'
#   CRITEST=1 hack/vm/cri-tests.sh             # critest's runtime focus, sandy vs runc
#                                              # (10-35 min under TCG: SANDY_VM_TIMEOUT 5700 s by default)
#   CRITEST=1 SANDY_CRITEST_FOCUS=OOMKilled KEEP=/tmp/x hack/vm/cri-tests.sh
#                                              # one spec; critest's reports and logs kept in /tmp/x
#   BENCH=1 hack/vm/cri-tests.sh               # BenchmarkCRIPodStart (RUNS pods per handler)
#
# crictl and critest are the ones hack/setup.sh builds
# (/var/cache/sandy-cri/bin). Exit status: the tests'. Run as root the first
# time (the image build needs it). About 2-3.5 min under TCG (TestCRIPod
# 77-143 s).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=/var/cache/sandy-cri/bin
mkdir -p "${SANDY_VM_DIR:-/var/tmp/sandy-vm}"
OUT=$(mktemp -d "${SANDY_VM_DIR:-/var/tmp/sandy-vm}/cri.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
chmod 0755 "$OUT"
for b in crictl critest; do
	[ -x "$CACHE/$b" ] || { echo "cri-tests.sh: $CACHE/$b missing: hack/setup.sh builds it" >&2; exit 1; }
	cp "$CACHE/$b" "$OUT/$b"
done
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$OUT/sandy" ./cmd/sandy)
(cd "$REPO" && CGO_ENABLED=0 go test -c -tags integration -o "$OUT/sandy.test" ./cmd/sandy)

args=(-test.v -test.count=1 -test.timeout=50m)
if [ "${CRITEST:-}" = 1 ]; then
	# The whole focus took 10 to 34 min under TCG (2026-12-06, at loads
	# of 1-4 and 6-17): more than run.sh's 900 s and the 50 min above.
	export SANDY_VM_TIMEOUT=${SANDY_VM_TIMEOUT:-5700}
	args=(-test.v -test.count=1 -test.timeout=92m -test.run '^TestCritest$')
elif [ "${BENCH:-}" = 1 ]; then
	args+=(-test.run '^$' -test.bench '^BenchmarkCRIPodStart$' -test.benchtime "${RUNS:-10}x")
else
	args+=(-test.run '^TestCRIPod$')
fi
# In the package's directory: the tests read files by relative path
# (hack/conformance/expected/critest-sandy-only.txt).
SANDY_VM_MODE=root "$HERE/run.sh" -s "$OUT" -o "${KEEP:-$OUT/kept}" -e SANDY_CRITEST -e SANDY_CRITEST_FOCUS -e SANDY_CRI_PODS -- bash -c '
	set -u
	dir=$0 repo=$1
	shift
	# On the guest disk, as on a node: a binary run from the 9p share
	# pages in through 9p on every exec (no page cache: cache=none), which
	# made each sandy call take seconds, and containerd gives a task
	# delete 10 s.
	bin=/usr/local/lib/sandy-cri
	mkdir -p "$bin" && cp "$dir"/sandy "$dir"/crictl "$dir"/critest "$dir"/sandy.test "$bin"/ || exit 125
	export SANDY_BIN=$bin/sandy SANDY_CRICTL=$bin/crictl SANDY_CRITEST_BIN=$bin/critest
	# critest'"'"'s reports and logs, copied back with run.sh -o.
	export SANDY_CRITEST_OUT=$SANDY_VM_OUT/critest
	cd "$repo/cmd/sandy" || exit 125
	"$bin/sandy.test" "$@"
	rc=$?
	[ -f "$SANDY_CRITEST_OUT/summary.txt" ] && cat "$SANDY_CRITEST_OUT/summary.txt"
	# sandy doctor as root on a systemd node: the system'"'"'s systemd (PID 1).
	out=$("$bin/sandy" doctor --json 2>&1)
	case $out in
	*"started on unix:path=/run/systemd/private"*) echo "ok: sandy doctor as root: a scope on the system'"'"'s systemd" ;;
	*) echo "FAIL: sandy doctor as root: $out"; rc=1 ;;
	esac
	echo "--- after the tests: units of pods (scopes and slices) and kubepods cgroups"
	systemctl list-units --all --plain --no-legend "cri-containerd-*" "kubepods*"
	find /sys/fs/cgroup -name "cri-containerd-*" -o -name "kubepods-besteffort-pod*"
	exit $rc
' "$OUT" "$REPO" "${args[@]}" "$@"
