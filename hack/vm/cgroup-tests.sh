#!/usr/bin/env bash
# hack/vm/cgroup-tests.sh — the cgroupv2 integration suite (build tag
# vmcgroup) in one VM boot: builds the static test binary on the host, runs
# it as the lingering user inside a real systemd user session, then the
# crun/runc reference timings. Exit status: the suite's; 124 when a test
# hung (-test.timeout) or the VM did (hack/vm/run.sh).
#
#   hack/vm/cgroup-tests.sh [go test flags for the binary, e.g. -test.run=OOM]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$(mktemp -d "${SANDY_VM_DIR:-/var/tmp/sandy-vm}/cgtest.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
chmod 0755 "$OUT"
(cd "$REPO" && CGO_ENABLED=0 go test -c -tags vmcgroup -o "$OUT/cgroupv2.test" ./cgroupv2)
(cd "$REPO" && CGO_ENABLED=0 go vet -tags vmcgroup ./cgroupv2)
"$HERE/run.sh" -s "$OUT" -- bash -c '
	set -u
	dir=$0 bench=$1
	shift
	cd /tmp
	# A hung test panics with every goroutine's stack after 6 min (the
	# suite takes about 1), instead of the VM's silent timeout; exit 124
	# says "timed out" to hack/test.sh, which runs a timed-out suite once more.
	"$dir/cgroupv2.test" -test.v -test.count=1 -test.timeout=6m "$@" 2>&1 | tee /tmp/cgroupv2.log
	rc=${PIPESTATUS[0]}
	if grep -q "^panic: test timed out" /tmp/cgroupv2.log; then rc=124; fi
	echo "--- systemctl --user list-units sandy-* after the suite:"
	systemctl --user list-units --all --no-legend "sandy-*"
	echo "--- reference: crun and runc in the same VM"
	bash "$bench"
	exit $rc
' "$OUT" "$HERE/bench-oci.sh" "$@"
