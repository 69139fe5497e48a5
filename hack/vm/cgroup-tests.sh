#!/usr/bin/env bash
# hack/vm/cgroup-tests.sh — the cgroupv2 integration suite (build tag
# vmcgroup) in one VM boot: builds the static test binary on the host, runs
# it as the lingering user inside a real systemd user session, then the
# crun/runc reference timings. Exit status: the suite's.
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
	"$dir/cgroupv2.test" -test.v -test.count=1 "$@"
	rc=$?
	echo "--- systemctl --user list-units sandy-* after the suite:"
	systemctl --user list-units --all --no-legend "sandy-*"
	echo "--- reference: crun and runc in the same VM"
	bash "$bench"
	exit $rc
' "$OUT" "$HERE/bench-oci.sh" "$@"
