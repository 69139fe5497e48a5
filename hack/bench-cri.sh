#!/usr/bin/env bash
# hack/bench-cri.sh — a pod's start through containerd's CRI, as a kubelet
# waits for it: runp + create + start (crictl), for the RuntimeClass
# handlers sandy, runc and crun (when crun is in PATH), interleaved in one
# run against one private containerd (internal/testutil/crifix; nothing of
# the system containerd is touched). Prints each handler's median and p90
# in ms (BenchmarkCRIPodStart); then the same against containerd in
# rootlesskit as the test user (BenchmarkCRIPodStartRootless, the test
# binary run as that user: a benchmark cannot re-run itself as another);
# then creates and deletes PODS pods with sandy, 4 at a time, and checks
# that nothing leaked (TestCRIPodChurn). Run as root, after hack/setup.sh
# (containerd, CNI plugins, crictl, rootlesskit).
#
#   RUNS=50 PODS=100 bash hack/bench-cri.sh
#   ONLY=rootless RUNS=20 bash hack/bench-cri.sh   # rootful, rootless or churn
#
# On a host with cgroup v1 controllers (hybrid), sandy runs the pods with
# SANDY_ALLOW_UNENFORCED=1 and makes no cgroup, while runc and crun make
# one per container in every v1 hierarchy: say so with the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
PODS=${PODS:-100}
[ "$(id -u)" -eq 0 ] || { echo "bench-cri.sh: run as root (rootful containerd)" >&2; exit 1; }
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
ONLY=${ONLY:-}
TEST_USER=${SANDY_TEST_USER:-sandytest}
metrics() { awk '/^BenchmarkCRIPodStart/ { for (i = 3; i < NF; i += 2) printf "  %-16s %8.1f\n", $(i + 1), $i } /^(FAIL|---)/ { print }'; }
crun_note=' (crun not installed: sandy and runc only)'
command -v crun >/dev/null && crun_note=''
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || crun_note=' (cgroup v1 controllers here: crun refuses every pod, sandy and runc only)'
echo "bench-cri: containerd $(containerd --version | awk '{print $3}'), $RUNS pod starts per handler$crun_note"
if [ -z "$ONLY" ] || [ "$ONLY" = rootful ]; then
	echo "bench-cri: rootful containerd"
	go test -count=1 -tags integration -run '^$' -bench '^BenchmarkCRIPodStart$' -benchtime "${RUNS}x" -timeout 60m ./cmd/sandy/ | metrics
fi
if [ -z "$ONLY" ] || [ "$ONLY" = rootless ]; then
	echo "bench-cri: rootless containerd (rootlesskit, as $TEST_USER; disable_cgroup)"
	bin=$(mktemp -d /tmp/sandy-bench-cri.XXXXXX)
	trap 'rm -rf "$bin"' EXIT
	chmod 0755 "$bin"
	CGO_ENABLED=0 go build -trimpath -o "$bin/sandy" ./cmd/sandy
	go test -c -tags integration -o "$bin/sandy.test" ./cmd/sandy/
	(cd "$bin" && runuser -u "$TEST_USER" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TMPDIR=/tmp SANDY_BIN="$bin/sandy" \
		"$bin/sandy.test" -test.run '^$' -test.bench '^BenchmarkCRIPodStartRootless$' -test.benchtime "${RUNS}x" -test.timeout 60m) | metrics
fi
if [ -z "$ONLY" ] || [ "$ONLY" = churn ]; then
	echo "bench-cri: $PODS pods with sandy, created and deleted 4 at a time"
	SANDY_CRI_PODS=$PODS go test -count=1 -tags integration -run '^TestCRIPodChurn$' -v -timeout 60m ./cmd/sandy/ |
		grep -E 'pods created|left behind|^(--- |FAIL|ok)'
fi
