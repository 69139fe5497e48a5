#!/usr/bin/env bash
# hack/seccomp-bench.sh — compile time and size of moby's default profile
# with sandy and with libseccomp, the BPF path length per syscall, and the
# cost of getpid(2) under no filter, sandy's and libseccomp's filters (each
# measured in a fresh process, best of 20 batches; see kernel_test.go).
#
#   hack/seccomp-bench.sh [count]     (default 5 runs of each benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}
SANDY_SECCOMP_BENCH=1 go test -count=1 -tags libseccomp -run 'PathLength|GetpidOverhead' -v ./seccomp | grep -E 'sandy|libseccomp|getpid' || true
go test -count=1 -tags libseccomp -run '^$' -bench 'Compile|Getpid' -benchtime "${count}x" ./seccomp
