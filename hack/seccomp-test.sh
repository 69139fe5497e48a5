#!/usr/bin/env bash
# hack/seccomp-test.sh — the seccomp package's tests, including the
# differential test against libseccomp (cgo, test-only; the shipped binary
# never links it) and a short fuzz run.
#
#   hack/seccomp-test.sh            vet, unit + kernel tests, differential
#   FUZZTIME=1000000x hack/seccomp-test.sh   a longer fuzz run
#
# The fuzz run is bounded by a count of executions ("Nx"), not by time: in
# go1.26 a -fuzztime duration can end in a bare "context deadline exceeded"
# failure with no crasher (go.dev/issue/75804, a race in the fuzz
# coordinator; CI failed on it once). Minimizing a new input is bounded too.
#
# Needs: Debian libseccomp-dev and pkg-config for the differential test
# (apt-get install libseccomp-dev pkg-config), gcc for the int $0x80 test.
set -euo pipefail
cd "$(dirname "$0")/.."

go vet ./seccomp/...
go vet -tags libseccomp ./seccomp/...
go test -count=1 ./seccomp/...
if pkg-config --exists libseccomp 2>/dev/null; then
	go test -count=1 -tags libseccomp -run 'Differential|PathLength' -v ./seccomp 2>&1 |
		grep -E '^(---|ok|FAIL|PASS)|libseccomp|random profiles|left out' || true
	go test -count=1 -tags libseccomp ./seccomp
else
	echo "hack/seccomp-test.sh: libseccomp-dev not installed (apt-get install libseccomp-dev pkg-config): differential test skipped" >&2
	[ "${CI:-}" = true ] && exit 1
fi
go test -run '^$' -fuzz=FuzzCompile -fuzztime="${FUZZTIME:-200000x}" -fuzzminimizetime=5s -parallel 1 ./seccomp
