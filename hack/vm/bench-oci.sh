#!/usr/bin/env bash
# hack/vm/bench-oci.sh — inside the VM, as the user: time `crun run` and
# `runc run` of /bin/true in a busybox bundle with and without their systemd
# cgroup manager, as the reference for sandy's added cgroup latency
# (docs/cgroups.md). Prints one line per runtime/manager: median of N runs.
set -euo pipefail
N=${N:-7}
B=$(mktemp -d /tmp/bench-oci.XXXXXX)
trap 'rm -rf "$B"' EXIT
mkdir -p "$B/rootfs/bin"
cp /bin/busybox "$B/rootfs/bin/busybox"
ln -s busybox "$B/rootfs/bin/true"
ln -s busybox "$B/rootfs/bin/sh"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bench() { # name spec-tool cmd...
	local name=$1 tool=$2
	shift 2
	(cd "$B" && rm -f config.json && $tool spec --rootless)
	sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/' "$B/config.json"
	local i t0 t1 times=()
	for i in $(seq "$N"); do
		t0=$(date +%s%N)
		"$@" run -b "$B" "bench-$i-$$" >/dev/null 2>"$B/err" || { echo "$name: failed: $(cat "$B/err")"; return 0; }
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000)))
	done
	printf 'OCI %-22s median %8.2f ms (n=%d)\n' "$name" "$(printf '%s\n' "${times[@]}" | median | awk '{print $1/1000}')" "$N"
}

bench "crun none" crun crun --cgroup-manager=disabled
bench "crun systemd" crun crun --systemd-cgroup
bench "runc cgroupfs(rootless)" runc runc
bench "runc systemd" runc runc --systemd-cgroup
