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
# In the VM: a hung test panics with every goroutine's stack after 6 min
# (the suite takes about 1) instead of the VM's silent timeout, and exit
# 124 says "timed out" to hack/test.sh, which runs such a suite once more.
# The output goes to a file, not through a pipe: a test that panics leaves
# its containers, which hold a pipe's write end, and a reader would wait
# for them forever.
"$HERE/run.sh" -s "$OUT" -- bash -c '
	set -u
	dir=$0 bench=$1
	shift
	cd /tmp
	"$dir/cgroupv2.test" -test.v -test.count=1 -test.timeout=6m "$@" >/tmp/cgroupv2.log 2>&1
	rc=$?
	cat /tmp/cgroupv2.log
	if grep -q "^panic: test timed out" /tmp/cgroupv2.log; then rc=124; fi
	echo "--- systemctl --user list-units sandy-* after the suite:"
	systemctl --user list-units --all --no-legend "sandy-*"
	echo "--- reference: crun and runc in the same VM"
	bash "$bench"
	exit $rc
' "$OUT" "$HERE/bench-oci.sh" "$@"
