#!/usr/bin/env bash
# hack/critest.sh — critest, cri-tools' CRI validation suite (v1.37.0, built
# by hack/setup.sh into /var/cache/sandy-cri/bin), its "runtime" focus
# (-ginkgo.focus runtime: the specs named "runtime should ..."), against a
# private rootful containerd (internal/testutil/crifix; the system
# containerd is not touched), once with the RuntimeClass handler sandy and
# once with runc, one after the other, serially (one ginkgo process);
# MODE=rootless, against containerd in rootlesskit (below).
# Prints passed/failed/skipped/not-run counts side by side, the sandy-only
# failures (each marked explained or not: hack/conformance/expected/
# critest-sandy-only.txt, docs/conformance.md), runc-only failures and
# failures with both. It runs TestCritest (cmd/sandy/critest_integration_test.go),
# which CI runs as well, and exits non-zero as it fails: on a sandy-only
# failure not explained, or on a spec that fails with both handlers.
#
#   bash hack/critest.sh                                  # as root
#   FOCUS='Mount Propagation' bash hack/critest.sh        # a subset (a ginkgo regexp)
#   OUT=/tmp/x SANDY_BIN=/tmp/sandy bash hack/critest.sh  # keep elsewhere; a prebuilt sandy
#   MODE=rootless bash hack/critest.sh                    # rootless containerd (below)
#
# MODE=rootless runs TestCritestRootless instead (CI runs it too): the
# same comparison against containerd inside rootlesskit as the test user
# (crifix Options.Rootless, as containerd-rootless.sh runs it), critest
# run as that user in rootlesskit's namespaces (nsenter), where the
# bridge has its address and the CNI portmap plugin makes host ports.
# There the host port spec runs; the OOM spec is not run (containerd's
# disable_cgroup drops the memory limit, for both handlers), and HostIpc
# and HostPID must fail with both, for the kernel's reason
# (critestRootlessFailures in the test, docs/kubernetes.md). OUT defaults
# to /tmp/sandy-critest-rootless and is given to the test user.
#
# Images: none is pulled. critest's images (registry.k8s.io/e2e-test-images/
# busybox:1.29-2, nginx:1.14-2, gcr.io/k8s-staging-cri-tools/hostnet-nginx-ARCH,
# test-image-predefined-group) are rebuilt from Debian's busybox-static
# and imported under those names; critest pulls only an image the
# runtime lacks.
#
# Not run, for both handlers (critestSkips and critestRootfulSkips in the
# test, with the reason):
#   - rootful only: "port mapping with host port and container port": host
#     ports are the CNI portmap plugin's iptables DNAT rules, host-wide on
#     a shared machine; the tests' rootful CNI network has no portmap
#     (containerd and CNI implement them, not the runtime).
#   - "runtime should support MaskedPaths": not runnable offline; it masks
#     /bin/ls and expects `sh -c ls` to fail, but the rebuilt image's shell
#     (Debian's busybox-static, FEATURE_SH_STANDALONE) runs its ls applet
#     without exec'ing /bin/ls.
# critest skips by itself, for both: AppArmor (disabled on this host), user
# namespaces, SupplementalGroupsPolicy, recursive read-only mounts and the
# metrics endpoints (containerd 1.6 does not offer them).
#
# On a host with cgroup v1 controllers (hybrid), containerd runs sandy with
# SANDY_ALLOW_UNENFORCED=1 (docs/kubernetes.md), as crifix's other tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "critest.sh: run as root (a rootful containerd with the CRI plugin)" >&2; exit 1; }
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
case ${MODE:=rootful} in
rootful) test=TestCritest OUT=${OUT:-/tmp/sandy-critest} ;;
rootless) test=TestCritestRootless OUT=${OUT:-/tmp/sandy-critest-rootless} ;;
*) echo "critest.sh: MODE=$MODE: rootful or rootless" >&2; exit 2 ;;
esac
rm -rf "$OUT"
mkdir -p "$OUT"
echo "critest.sh: $MODE containerd $(containerd --version | awk '{print $3}'), handlers sandy and runc; reports and logs in $OUT"
rc=0
SANDY_CRITEST=full SANDY_CRITEST_FOCUS=${FOCUS:-} SANDY_CRITEST_OUT=$OUT \
	go test -count=1 -tags integration -run "^$test\$" -v -timeout 90m ./cmd/sandy/ >"$OUT/go-test.log" 2>&1 || rc=$?
if [ -f "$OUT/summary.txt" ]; then
	cat "$OUT/summary.txt"
else
	tail -40 "$OUT/go-test.log"
fi
if [ "$rc" -ne 0 ]; then
	grep -E 'critest_integration_test.go:[0-9]+: (sandy-only failure|fails with sandy and runc|critest with|.* is listed as failing|.* but not as listed)' "$OUT/go-test.log" || true
	echo "critest.sh: FAILED (go test exit $rc; $OUT/go-test.log, critest's logs $OUT/{sandy,runc}.log)"
fi
exit "$rc"
