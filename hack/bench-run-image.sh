#!/usr/bin/env bash
# hack/bench-run-image.sh — `sandy run --rm IMAGE true` against podman's
# `run --rm IMAGE true` (podman 4.3 with runc and with crun) and against
# sandy's own `run ./bundle` of the same root, rootless, as the test user,
# in one run on one machine, with hyperfine, interleaved. The image is busybox-static in
# one layer, imported by podman into a store that both tools share
# (XDG_DATA_HOME, driver overlay), so every row runs the same layers.
# Each of RUNS rounds is one `hyperfine -N --runs 1` over every row, the
# rows' order rotated by one each round, after 3 untimed rounds; a row's
# median and p90 are over its RUNS times, and a ratio is the median of the
# RUNS per-round ratios, so a shared machine's changing load moves both
# sides of a ratio alike (the figures below are from back-to-back runs).
# A fifth row runs the image with the Go init (SANDY_RAW_INIT=0): the raw
# init's gain on the image path, in the same run.
# Prints median and p90 of each row and the ratios of issue 13's targets:
#   sandy run --rm IMAGE / podman run --rm IMAGE (runc)   target <= 0.25
#   sandy run --rm IMAGE / sandy run ./bundle               target <= 1.3
# All rows use --network=none (podman: --network none), so the network's
# teardown is not measured; the bundle row runs on sandy's default root
# layer (overlay over the bundle's rootfs, the full subordinate map).
# Run as root (it installs podman, crun, runc, hyperfine); about a minute
# with RUNS=20 on 2 cores.
#
#   RUNS=30 bash hack/bench-run-image.sh
#
# Figures (2 cores, load average below 1, RUNS=20, 2026-12-06; podman 4.3.1,
# runc 1.1.5, crun 1.8.1):
#                  median ms   p90 ms
#   sandy-image        181.1    195.7
#   sandy-bundle        84.7     95.4
#   podman-runc        425.2    436.3
#   podman-crun        360.2    381.0
#   sandy run --rm IMAGE / podman (runc): 0.43 (target <= 0.25)
#   sandy run --rm IMAGE / sandy run ./bundle: 2.14 (target <= 1.3)
# The detached rows (run -d, container exec, rm -f; last) came later and
# were measured on a loaded machine only: see docs/images.md#running-an-image.
# Where the ~96 ms over the bundle go (--debug): creating the storage
# container 66-70 ms, of which 15-20 ms are the store's own work (lookup,
# config, CreateContainer, the mount that reads /etc/passwd) and the rest is
# starting sandy-image (exec of a 36 MB binary, 290 package inits, newuidmap
# and newgidmap, opening the store); removing it 16-19 ms through the
# helper that waited (a second helper's start-up was 150 ms).
# Since then the removal is off the user's wait and the host no longer
# compiles sandy's default seccomp profile only to check it, the store's
# namespace is kept by a pause process, and the storage container is made
# by sandy-store (no image library: half sandy-image's start) as a
# volatile one: see docs/design.md, "The image path", for the breakdown
# and the A/B figures (RUNS=30 at load 6-9 on 2026-12-06: /podman (runc)
# 0.32 -> 0.28, /bundle 2.15 -> 1.86). On a quiet machine (load 1.6-2,
# RUNS=20, 2026-12-06 22:12 and 23:28, before and after the user database
# read through the layers, the init started beside the helper and the file
# creations off run's path): sandy-image 63.8 -> 33.2 ms, sandy-bundle
# 30.8 -> 19.2, podman-runc 165.8 -> 142.8; /podman (runc) 0.38 -> 0.23
# (target 0.25), /bundle 2.09 -> 1.62 (target 1.3). 2026-12-07 01:01
# (load 0.1-0.6): 24.4 ms, 15.7, 111.2; 0.22, 1.61; run -d 39.1, exec 6.6,
# rm -f 40.7. Since then run -d's monitor starts its init while the helper
# works (paired: run -d 0.82-0.85 of before); docs/design.md, "Where run
# --rm IMAGE's time over the bundle's goes", has the breakdown, and why a
# file made in this script's /tmp store costs what it does. Since then the
# storage container of a name in the store's form (this script's) is made
# by sandy-create, which links nothing of the image library: 107 package
# inits against sandy-store's 134, its start 0.5 ms shorter; in run --rm
# IMAGE at most 2 %, at the edge of this machine's noise (docs/design.md,
# "The run-path helper's dependencies").
# A sixth row runs the image without a spare helper
# (SANDY_HELPER_LINGER=0: every run starts its sandy-create; the other
# image rows find the spare their last run left, docs/images.md "The
# spare helper"). 2026-12-07 22:10, RUNS=30, load below 1: sandy-image
# 12.9 ms, without a spare 15.8, bundle 9.1, podman-runc 124.7;
# image/bundle 1.44 (1.74 without the spare), 1.61 (1.95) in a second
# run; paired back to back with farm-bench, image/bundle 1.28.
# BENCH_DIR (default /tmp) is where the work directory goes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
user=${SANDY_TEST_USER:-sandytest}
SANDY_EXTRA_PKGS="podman crun runc hyperfine" bash hack/setup.sh >/dev/null
export PATH=/usr/local/go/bin:$PATH
work=$(mktemp -d "${BENCH_DIR:-/tmp}/sandy-bench-run.XXXXXX")
chmod 755 "$work"
cleanup() {
	local pid
	pid=$(cat "$work/run/libpod/tmp/pause.pid" 2>/dev/null || true)
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
PREFIX="$work" bash hack/install.sh >/dev/null
bin=$work/bin
SANDY="$bin/sandy" bash hack/mkbundle.sh "$work/bundle" /bin/true >/dev/null
tar -C "$work/bundle/rootfs" -cf "$work/rootfs.tar" .
mkdir -p "$work/data" "$work/config/containers" "$work/run"
printf '[storage]\ndriver = "overlay"\n' >"$work/config/containers/storage.conf"
printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$work/config/containers/containers.conf"
chown -R "$user:" "$work"
chmod 700 "$work/run"
env="XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config XDG_RUNTIME_DIR=$work/run"
cat >"$work/inner.sh" <<INNER
set -eu
export $env
cd $work
# podman's pause process starts here, in the mount namespace that hides
# cgroup.controllers from crun (below).
podman import -q $work/rootfs.tar localhost/bench-bb:1 >/dev/null
# Untimed first runs: sandy's and podman's layer directories.
podman --runtime runc run --rm --network none localhost/bench-bb:1 /bin/true
podman --runtime crun run --rm --network none localhost/bench-bb:1 /bin/true
$bin/sandy run --rm --network=none localhost/bench-bb:1 /bin/true 2>/dev/null
names=(sandy-image sandy-bundle podman-runc podman-crun sandy-image-goinit sandy-image-cold)
cmds=("$bin/sandy run --rm --network=none localhost/bench-bb:1 /bin/true"
  "$bin/sandy run --network=none $work/bundle"
  "podman --runtime runc run --rm --network none localhost/bench-bb:1 /bin/true"
  "podman --runtime crun run --rm --network none localhost/bench-bb:1 /bin/true"
  "env SANDY_RAW_INIT=0 $bin/sandy run --rm --network=none localhost/bench-bb:1 /bin/true"
  "env SANDY_HELPER_LINGER=0 $bin/sandy run --rm --network=none localhost/bench-bb:1 /bin/true")
mkdir -p $work/rounds
for ((round = -3; round < $RUNS; round++)); do
  args=()
  for ((k = 0; k < \${#names[@]}; k++)); do
    i=\$(((k + round + 18) % \${#names[@]}))
    args+=(-n "\${names[i]}" "\${cmds[i]}")
  done
  out=$work/warmup.json
  [ "\$round" -ge 0 ] && out=$work/rounds/\$round.json
  hyperfine --style none -N --runs 1 --export-json "\$out" "\${args[@]}" >/dev/null
done
# The detached lifecycle, step by step (hyperfine 1.15 has no per-run
# clean-up): run -d (until the id is printed: the process runs), exec of
# /bin/true into it by id, rm -f (SIGKILL, the monitor's end, the storage
# container's removal); a container at a time, milliseconds.
: >$work/detach.txt
for i in \$(seq $RUNS); do
  t0=\$(date +%s%N)
  id=\$($bin/sandy run -d --network=none localhost/bench-bb:1 /bin/sleep 1000 2>/dev/null)
  t1=\$(date +%s%N)
  $bin/sandy container exec \$id /bin/true
  t2=\$(date +%s%N)
  $bin/sandy container rm -f \$id >/dev/null
  t3=\$(date +%s%N)
  echo "\$(( (t1-t0)/1000 )) \$(( (t2-t1)/1000 )) \$(( (t3-t2)/1000 ))" >>$work/detach.txt
done
INNER
chmod 755 "$work/inner.sh"
# crun refuses a hybrid host (cgroup2 mounted with controllers elsewhere)
# unless cgroup.controllers is hidden: done in a private mount namespace.
hide=""
[ -e /sys/fs/cgroup/unified/cgroup.controllers ] && hide="mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers;"
unshare --mount --propagation private sh -c "$hide runuser -u $user -- bash $work/inner.sh"
python3 - "$work/rounds" <<'PY'
import glob, json, os, statistics, sys
# rounds[i] = {row: seconds} of round i.
rounds = [{r["command"]: r["times"][0] for r in json.load(open(f))["results"]}
          for f in glob.glob(os.path.join(sys.argv[1], "*.json"))]
names = ["sandy-image", "sandy-bundle", "podman-runc", "podman-crun", "sandy-image-goinit", "sandy-image-cold"]
def ratio(a, b):
    """The median of the per-round ratios a_i/b_i."""
    return statistics.median(r[a] / r[b] for r in rounds)
print(f"{'':14} {'median ms':>9} {'p90 ms':>8}")
for k in names:
    v = sorted(r[k] for r in rounds)
    print(f"{k:14} {statistics.median(v) * 1e3:9.1f} {v[min(len(v) - 1, int(0.9 * len(v)))] * 1e3:8.1f}")
print(f"sandy run --rm IMAGE / podman (runc): {ratio('sandy-image', 'podman-runc'):.2f} (target <= 0.25)")
print(f"sandy run --rm IMAGE / podman (crun): {ratio('sandy-image', 'podman-crun'):.2f}")
print(f"sandy run --rm IMAGE / sandy run ./bundle: {ratio('sandy-image', 'sandy-bundle'):.2f} (target <= 1.3)")
print(f"sandy run --rm IMAGE / the same with the Go init (SANDY_RAW_INIT=0): {ratio('sandy-image', 'sandy-image-goinit'):.2f}")
print(f"sandy run --rm IMAGE / the same without a spare helper (SANDY_HELPER_LINGER=0): {ratio('sandy-image', 'sandy-image-cold'):.2f}")
print(f"without a spare helper / sandy run ./bundle: {ratio('sandy-image-cold', 'sandy-bundle'):.2f}")
PY
python3 - "$work/detach.txt" <<'PY'
import statistics, sys
cols = list(zip(*[map(int, l.split()) for l in open(sys.argv[1]) if l.strip()]))
for name, v in zip(["sandy run -d IMAGE", "container exec ID true", "container rm -f ID"], cols):
    v = sorted(v)
    print(f"{name:22} {statistics.median(v) / 1e3:9.1f} {v[min(len(v) - 1, int(0.9 * len(v)))] / 1e3:8.1f}")
PY
