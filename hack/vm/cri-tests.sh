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
# reported as OOMKilled, and no unit or cgroup left.
#
#   hack/vm/cri-tests.sh                       # TestCRIPod
#   hack/vm/cri-tests.sh -test.run 'CRIPod$|CRIPodChurn'
#   CRITEST=1 hack/vm/cri-tests.sh             # critest's runtime focus, sandy vs runc
#   BENCH=1 hack/vm/cri-tests.sh               # BenchmarkCRIPodStart (RUNS pods per handler)
#
# crictl and critest are the ones hack/setup.sh builds
# (/var/cache/sandy-cri/bin). Exit status: the tests'. Run as root the first
# time (the image build needs it). TestCRIPod takes about 3 min under TCG.
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
	args+=(-test.run '^TestCritest$')
elif [ "${BENCH:-}" = 1 ]; then
	args+=(-test.run '^$' -test.bench '^BenchmarkCRIPodStart$' -test.benchtime "${RUNS:-10}x")
else
	args+=(-test.run '^TestCRIPod$')
fi
# In the package's directory: the tests read files by relative path
# (hack/conformance/expected/critest-sandy-only.txt).
SANDY_VM_MODE=root "$HERE/run.sh" -s "$OUT" -e SANDY_CRITEST -e SANDY_CRITEST_FOCUS -e SANDY_CRI_PODS -- bash -c '
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
	cd "$repo/cmd/sandy" || exit 125
	"$bin/sandy.test" "$@"
	rc=$?
	echo "--- after the tests: units of pods (scopes and slices) and kubepods cgroups"
	systemctl list-units --all --plain --no-legend "cri-containerd-*" "kubepods*"
	find /sys/fs/cgroup -name "cri-containerd-*" -o -name "kubepods-besteffort-pod*"
	exit $rc
' "$OUT" "$REPO" "${args[@]}" "$@"
