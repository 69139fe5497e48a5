#!/usr/bin/env bash
# hack/setup.sh — prepare a Debian 12 machine for sandy: packages, an unprivileged
# test user with subordinate id ranges, and usable /dev/fuse and /dev/net/tun.
# Run as root. Idempotent: safe on a fresh machine and on one already set up.
set -euo pipefail

TEST_USER=${SANDY_TEST_USER:-sandytest}
SUB_START=${SANDY_TEST_SUBID_START:-300000}
SUB_COUNT=${SANDY_TEST_SUBID_COUNT:-65536}

if [ "$(id -u)" -ne 0 ]; then
	echo "hack/setup.sh: run as root (it installs packages and creates the test user '$TEST_USER')" >&2
	exit 1
fi

pkgs=(uidmap slirp4netns fuse-overlayfs fuse3 busybox-static iproute2 util-linux procps ca-certificates git gcc libc6-dev)
# containerd's CRI plugin and CNI: the Kubernetes tests (docs/kubernetes.md);
# rootlesskit runs that containerd rootless (TestCRIPodRootless).
pkgs+=(containerd containernetworking-plugins rootlesskit)
pkgs+=(${SANDY_EXTRA_PKGS:-})
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
	# bookworm's golang-go (1.19) is older than go.mod asks for:
	# hack/go-toolchain.sh then fetches the right toolchain from the Go
	# module proxy (below, and in every script that builds).
	missing+=(golang-go)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "hack/setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# crictl (cri-tools), the kubelet's stand-in in the CRI tests: Debian 12 has
# no package, so it is built once from the Go module proxy into a cache
# that later runs reuse (cold Go caches: about 2 min of CPU, 76 s to 3.5 min
# of wall time on a shared 2-core machine).
CRICTL_VERSION=v1.37.0
export PATH=/usr/local/go/bin:$PATH
. "$(dirname "$0")/go-toolchain.sh"
use_go_toolchain
crictl_dir=${SANDY_CRI_CACHE:-/var/cache/sandy-cri}/bin
if [ "$(cat "$crictl_dir/crictl.version" 2>/dev/null)" != "$CRICTL_VERSION" ] || [ ! -x "$crictl_dir/crictl" ]; then
	echo "hack/setup.sh: building crictl $CRICTL_VERSION into $crictl_dir (once)"
	go=$(command -v go || echo /usr/local/go/bin/go)
	mkdir -p "$crictl_dir"
	GOBIN=$crictl_dir CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-auto} \
		"$go" install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
	echo "$CRICTL_VERSION" >"$crictl_dir/crictl.version"
fi
# critest, cri-tools' CRI validation suite (TestCritest, hack/critest.sh),
# same module and version. It is a Go test binary: cri-tools' Makefile
# builds it with `go test -c ./cmd/critest` inside the module, so the
# module's source is copied out of the module cache (read-only there) and
# built with its own go.mod and go.sum (about 1 min of CPU with warm caches).
if [ "$(cat "$crictl_dir/critest.version" 2>/dev/null)" != "$CRICTL_VERSION" ] || [ ! -x "$crictl_dir/critest" ]; then
	echo "hack/setup.sh: building critest $CRICTL_VERSION into $crictl_dir (once)"
	go=$(command -v go || echo /usr/local/go/bin/go)
	mkdir -p "$crictl_dir"
	src=$(cd / && GOTOOLCHAIN=${GOTOOLCHAIN:-auto} "$go" mod download -json "sigs.k8s.io/cri-tools@$CRICTL_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { echo "hack/setup.sh: go mod download sigs.k8s.io/cri-tools@$CRICTL_VERSION gave no source directory" >&2; exit 1; }
	build=$(mktemp -d)
	cp -r "$src" "$build/cri-tools"
	chmod -R u+w "$build/cri-tools"
	(cd "$build/cri-tools" && CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-auto} "$go" test -c -o "$crictl_dir/critest.new" \
		-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" ./cmd/critest)
	rm -rf "$build"
	mv "$crictl_dir/critest.new" "$crictl_dir/critest"
	echo "$CRICTL_VERSION" >"$crictl_dir/critest.version"
fi

if ! id "$TEST_USER" >/dev/null 2>&1; then
	useradd --create-home --shell /bin/bash "$TEST_USER"
fi
for f in /etc/subuid /etc/subgid; do
	touch "$f"
	grep -q "^$TEST_USER:" "$f" || echo "$TEST_USER:$SUB_START:$SUB_COUNT" >>"$f"
done

# A normal distro (udev) makes these 0666; this machine ships them 0600.
for d in /dev/fuse /dev/net/tun; do
	[ -e "$d" ] && chmod 0666 "$d"
done

# ICMP echo sockets for every group, as systemd's 50-default.conf sets
# on a normal Debian 12 (the kernel's own default allows none): ping from
# a container (slirp4netns, usernet) sends with them.
if [ "$(cat /proc/sys/net/ipv4/ping_group_range)" = "$(printf '1\t0')" ]; then
	sysctl -qw net.ipv4.ping_group_range="0 2147483647"
fi

# Unprivileged user namespaces must be allowed.
if [ -e /proc/sys/kernel/unprivileged_userns_clone ] && [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
	sysctl -qw kernel.unprivileged_userns_clone=1
fi
if [ -e /proc/sys/kernel/apparmor_restrict_unprivileged_userns ] && [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns)" = 1 ]; then
	sysctl -qw kernel.apparmor_restrict_unprivileged_userns=0
fi
echo "hack/setup.sh: ready (test user $TEST_USER, subordinate ids $(grep "^$TEST_USER:" /etc/subuid))"
