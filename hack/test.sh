#!/usr/bin/env bash
# hack/test.sh — set up this machine (as root) and run every test:
#   1. lint (gofmt, go vet with and without tags, banned calls)
#   2. unit tests (anywhere)
#   3. integration tests: build sandy and run it rootless as the unprivileged
#      test user (every package's -tags integration tests); the CRI tests
#      (a private rootful containerd driven by crictl) and the root tests
#      run as root
#   4. conformance against real peers (hack/conformance): the OCI
#      runtime-tools validation suite as root and rootless (every binary
#      that passed when hack/conformance/expected/ was measured must pass),
#      runc's own integration tests (bats, root and rootless; every test
#      listed in hack/conformance/expected/runc-bats-*.txt must pass),
#      podman as a rootless client, containerd's runc shim under rootless
#      containerd; every step must pass
#   5. seccomp: the differential test against libseccomp (cgo, test-only)
#      and a short fuzz run
#   6. cgroup v2 with real systemd delegation, in a VM (hack/vm): the
#      cgroupv2 suite, then `sandy run` end to end in a systemd user session,
#      `sandy doctor`, and TestCRIPod as root with containerd's systemd
#      cgroup driver (hack/vm/cri-tests.sh)
#   7. the README's first command, hack/demo.sh, and its install path's Go
#      on Debian 12's own golang-go 1.19 (hack/go-toolchain-test.sh)
# CI=true turns every skip into a failure. SANDY_SKIP_VM=1 leaves out step 6
# (say so: it is the only proof of the systemd and cgroupfs managers), and
# SANDY_SKIP_CONFORMANCE=1 step 4; CI refuses both.
set -euo pipefail
cd "$(dirname "$0")/.."
# docker-registry and skopeo: the image tests' local registry and image
# checker (internal/testutil/imagefix; the tests start the registry on a free
# port of their own, never the package's :5000 service); podman: the image
# tests share its store.
SANDY_EXTRA_PKGS="libseccomp-dev pkg-config docker-registry skopeo podman ${SANDY_EXTRA_PKGS:-}" bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
. hack/go-toolchain.sh
use_go_toolchain
# The test binaries and the sandy binary are copied to a directory every
# user can read; integration tests re-run themselves as the test user.
export TMPDIR=${TMPDIR:-/tmp}
start=$(date +%s)
step() { echo; echo "== $* ($(($(date +%s) - start)) s)"; }

step "lint"
bash hack/lint.sh

# The image helper's libraries need these tags (no gpgme, no btrfs: cgo).
tags=containers_image_openpgp,exclude_graphdriver_btrfs

step "unit tests"
go test -count=1 -tags "$tags" ./...

step "integration tests (rootless, as ${SANDY_TEST_USER:-sandytest})"
go test -count=1 -tags "integration,$tags" -timeout 45m ./...

if [ "${SANDY_SKIP_CONFORMANCE:-}" = 1 ]; then
	step "conformance SKIPPED (SANDY_SKIP_CONFORMANCE=1): runtime-tools, runc's bats tests, podman and containerd not run"
	[ "${CI:-}" = true ] && exit 1
else
	step "conformance: OCI runtime-tools suite (root and rootless)"
	STRICT=1 RUNTIMES=sandy bash hack/conformance/runtime-tools.sh
	step "conformance: runc 1.1.5's integration tests (bats; root and rootless)"
	STRICT=1 RUNTIMES=sandy bash hack/conformance/runc-bats.sh
	step "conformance: podman --runtime sandy (rootless)"
	STRICT=1 bash hack/conformance/podman.sh
	step "conformance: containerd, ctr run --runc-binary sandy (rootless)"
	STRICT=1 bash hack/conformance/containerd.sh
fi

step "seccomp: differential test against libseccomp, fuzz"
FUZZTIME=${FUZZTIME:-100000x} bash hack/seccomp-test.sh

if [ "${SANDY_SKIP_VM:-}" = 1 ]; then
	step "VM suites SKIPPED (SANDY_SKIP_VM=1): systemd and cgroupfs managers not proven in this run"
	[ "${CI:-}" = true ] && exit 1
else
	# vm_suite runs a VM suite; one that timed out (exit 124: the VM or a
	# test hung) runs once more, said loudly. Under TCG the guest stalled
	# once in ~40 runs (TestSystemdScope, 2026-12-06); a second timeout fails.
	vm_suite() {
		local rc=0
		SANDY_VM_TIMEOUT=${SANDY_VM_TIMEOUT:-600} bash "$@" || rc=$?
		if [ "$rc" = 124 ]; then
			echo "hack/test.sh: $* TIMED OUT (exit 124; the output above shows where); running it once more" >&2
			rc=0
			SANDY_VM_TIMEOUT=${SANDY_VM_TIMEOUT:-600} bash "$@" || rc=$?
		fi
		return "$rc"
	}
	step "cgroup v2 suite in a systemd VM (builds the image on first use)"
	bash hack/vm/image.sh
	vm_suite hack/vm/cgroup-tests.sh
	step "sandy run end to end in the systemd VM"
	vm_suite hack/vm/sandy-e2e.sh
	step "sandy doctor's systemd rows in the VM (no D-Bus session, controllers not delegated, linger off)"
	vm_suite hack/vm/doctor-tests.sh
	step "sandy as containerd's RuntimeClass handler in the VM, as root (systemd cgroup driver, cgroup v2; ~3.5 min)"
	vm_suite hack/vm/cri-tests.sh
fi
step "the README's main job (hack/demo.sh)"
bash hack/demo.sh
step "the README's install path on Debian 12's own Go (golang-1.19-go: go.mod's Go fetched, hack/go-toolchain-test.sh)"
bash hack/go-toolchain-test.sh
step "all passed"
