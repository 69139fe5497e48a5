#!/usr/bin/env bash
# hack/bench-images.sh — sandy's image commands against podman's, rootless,
# as the unprivileged test user, in one run on one machine, each run into a
# fresh empty store (no layer reuse):
#   load   `sandy load -i ARCHIVE` vs `podman load -i ARCHIVE` (docker-archive)
#   pull   `sandy pull` vs `podman pull` from a local docker-registry (plain
#          HTTP on 127.0.0.1, --tls-verify=false)
# Prints median and p90 of each, the ratio sandy/podman (target <= 0.8),
# the peak RSS of each, and the "no second copy" check: podman pulls the
# image, then `sandy pull` of the same image into the same store must copy
# no layer (store size and layer count before and after, and its time).
#
# The image: about 210 MB in 5 layers (busybox-static as the base so it
# runs, then python3.11, perl, libLLVM-14 and the glibc locale sources, as
# tars of the host's directories), written once as a docker-archive, an
# OCI layout (gzip layers, ~60 MB) and a registry's storage, cached in
# $SANDY_BENCH_CACHE (default /var/tmp/sandy-bench-images) between runs.
#
# Both tools get the same store configuration: $XDG_DATA_HOME/containers/
# storage with the overlay driver (native rootless overlay: podman 4.3 on
# Debian 12 would otherwise default to vfs here, as no
# /etc/containers/storage.conf is installed) and a containers.conf for a
# host without systemd. Before each timed command, an untimed `images`
# creates the store (and podman's pause process), so the rows measure a
# pull or load into an existing, empty store, not first-use setup.
# Commands alternate sandy-first and podman-first between runs.
#
# Peak RSS is GNU time's %M: ru_maxrss of wait4(2) on the direct child,
# which the kernel makes the largest of that process and every descendant
# it reaped (signal->cmaxrss is folded into the parent at each reap). So it
# covers sandy-image's re-exec into the user namespace and the
# storage-untar children the namespace child runs, but it is the largest
# single process, not the sum of those alive at once. The "tree" figure is
# that sum: one extra untimed run, sampling the VmRSS of the whole process
# tree every 20 ms.
#
# Run as root (it installs podman, skopeo, docker-registry and time, and
# starts the registry); about 3 minutes with RUNS=5 on 2 cores, plus one
# more the first time, to build the image.
#
#   RUNS=9 bash hack/bench-images.sh
#
# Figures (Debian 12 VM, 2 cores shared with other builds and tests, load
# average 5-9; RUNS=5, 2026-12-06; podman 4.3.1, sandy 51799d2 on
# go.podman.io/image v5.42.1 and storage v1.65.1):
#                               median s   p90 s  CPU s  RSS MB
#   sandy load                      4.73    5.98   4.31    38.3
#   podman load                     6.57    8.59   5.66    50.0
#   sandy pull                      6.30   12.77   6.19    54.5
#   podman pull                     8.37    9.12   7.57    69.6
#   sandy pull, podman's image      0.36    0.66   0.15    22.9
#   load: sandy/podman 0.72 wall (target <= 0.8), 0.76 CPU
#   pull: sandy/podman 0.75 wall (target <= 0.8), 0.82 CPU
#   peak RSS of sandy pull: 55.7 MB (%M, largest single process), 98.8 MB
#     summed over the tree; podman pull: 68.6 MB, 102.3 MB
#   no second copy: store 224730526 -> 224730425 bytes (-101: sandy's newer
#     storage library rewrites images.json without podman's empty
#     signatures-sizes entry), layers 5 -> 5, 0.36 s
# An earlier run of the same script: load 0.78, pull 0.65 (wall); CPU 0.77
# and 0.77. Wall times swing by a second or more with the machine's load;
# the CPU column (user + system of the whole tree) is steadier.
#
# Where sandy's time goes (CPU profile of the namespace child, one run):
# pull: ~70% gzip decompression (klauspost/compress), done twice per layer
# by go.podman.io/image's storage destination (once while the blob is
# written to a pending file, to compute the diff id; once when the layer is
# applied), then sha256 and tar-split's crc64 of every file; the
# storage-untar children (one re-exec of sandy-image per layer, chrooted)
# spend their time creating files (system time). load: sha256 (~26%: each
# layer is hashed twice, by the copy's digest check and for the diff id of
# the pending file), crc64 (~12%), read/write syscalls (~28%: the layer is
# written to the pending file, then read back and piped to the untar
# child), and the same untar children.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
user=${SANDY_TEST_USER:-sandytest}
cache=${SANDY_BENCH_CACHE:-/var/tmp/sandy-bench-images}
SANDY_EXTRA_PKGS="podman skopeo docker-registry time python3 curl" bash hack/setup.sh >/dev/null
export PATH=/usr/local/go/bin:$PATH
work=$(mktemp -d /tmp/sandy-bench-img.XXXXXX)
chmod 755 "$work"
regpid=""
cleanup() {
	[ -n "$regpid" ] && kill "$regpid" 2>/dev/null
	# podman's pause process of an interrupted run.
	local pid
	pid=$(cat "$work/s/run/libpod/tmp/pause.pid" 2>/dev/null || true)
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
PREFIX="$work" bash hack/install.sh >/dev/null
bin=$work/bin

# mkimage: a docker-archive of the layers named on the command line, each a
# comma-separated list of host paths ("busybox" is the base layer), with
# root owners and one fixed mtime, so the same host gives the same digests.
mkimage=$(
	cat <<'PY'
import hashlib, io, json, os, sys, tarfile
out, ref = sys.argv[1], sys.argv[2]
EPOCH = 946684800
def norm(ti):
    ti.uid = ti.gid = 0; ti.uname = ti.gname = "root"; ti.mtime = EPOCH
    return ti
def entry(t, name, kind, mode, data=b"", link=""):
    ti = norm(tarfile.TarInfo(name)); ti.type = kind; ti.mode = mode; ti.linkname = link; ti.size = len(data)
    t.addfile(ti, io.BytesIO(data) if data else None)
layers = []
for spec in sys.argv[3:]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        seen = set()
        for p in spec.split(","):
            if p == "busybox":
                for d, m in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
                    entry(t, d, tarfile.DIRTYPE, m)
                t.add("/bin/busybox", arcname="bin/busybox", filter=norm)
                for app in ("sh", "ls", "cat", "true", "du"):
                    entry(t, "bin/" + app, tarfile.SYMTYPE, 0o777, link="busybox")
                entry(t, "etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
                continue
            parts = p.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d); entry(t, d, tarfile.DIRTYPE, 0o755)
            t.add(p, arcname=p.lstrip("/"), filter=norm)
    layers.append(buf.getvalue())
diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2000-01-01T00:00:00Z",
    "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2000-01-01T00:00:00Z", "created_by": "hack/bench-images.sh"} for _ in layers]},
    sort_keys=True).encode()
cfgname = hashlib.sha256(cfg).hexdigest() + ".json"
names = [d[7:] + "/layer.tar" for d in diff_ids]
man = json.dumps([{"Config": cfgname, "RepoTags": [ref], "Layers": names}]).encode()
with tarfile.open(out + ".tmp", "w", format=tarfile.PAX_FORMAT) as t:
    for name, data in list(zip(names, layers)) + [(cfgname, cfg), ("manifest.json", man)]:
        entry(t, name, tarfile.REGTYPE, 0o644, data)
os.rename(out + ".tmp", out)
print(" + ".join(f"{len(b) / 1e6:.0f}" for b in layers), "MB")
PY
)
layers=(busybox /usr/lib/python3.11 /usr/share/perl,/usr/lib/x86_64-linux-gnu/perl /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1 /usr/share/i18n)
key=$(printf '%s\n' "$mkimage" "${layers[@]}" | sha256sum | cut -c1-16)
if [ "$(cat "$cache/key" 2>/dev/null)" != "$key" ]; then
	echo "bench-images: building the image in $cache (once)"
	rm -rf "$cache/image.tar" "$cache/layout" "$cache/registry" "$cache/key"
	mkdir -p "$cache"
	python3 -c "$mkimage" "$cache/image.tar" localhost/bench:1 "${layers[@]}"
	skopeo copy -q docker-archive:"$cache/image.tar" oci:"$cache/layout":bench
	echo "$key" >"$cache/key"
fi
chmod -R a+rX "$cache"

# The registry: Debian's docker-registry as root on a free port, its
# storage cached; skopeo's push is a no-op once the blobs are there.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $cache/registry
http:
  addr: 127.0.0.1:$port
  secret: sandy-bench
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
	sleep 0.1
done
curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$work/registry.log"; echo "bench-images: docker-registry did not come up" >&2; exit 1; }
ref=127.0.0.1:$port/bench:1
skopeo copy -q --dest-tls-verify=false oci:"$cache/layout":bench docker://"$ref"

# timed.sh DIR OUT CMD...: runs CMD as the test user with DIR's XDG homes
# and writes OUT.us (wall time, µs), OUT.rss ("%M %U %S" of GNU time: peak
# RSS in KB, user and system CPU seconds of the tree) and OUT.log.
cat >"$work/timed.sh" <<'EOF'
dir=$1 out=$2
shift 2
export XDG_DATA_HOME=$dir/data XDG_CONFIG_HOME=$dir/config XDG_RUNTIME_DIR=$dir/run
s=$(date +%s%N)
/usr/bin/time -f "%M %U %S" -o "$out.rss" "$@" >"$out.log" 2>&1 || { echo "bench-images: $* failed:" >&2; cat "$out.log" >&2; exit 1; }
e=$(date +%s%N)
echo $(((e - s) / 1000)) >"$out.us"
EOF
# treerss.py CMD...: runs CMD, samples the summed VmRSS of its process tree
# every 20 ms, prints "ru_maxrss_KB tree_peak_KB".
cat >"$work/treerss.py" <<'EOF'
import os, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = 0
while True:
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            kids.setdefault(int(s[s.rindex(")") + 2:].split()[1]), []).append(int(d))
    tree, todo, tot = [], [p.pid], 0
    while todo:
        x = todo.pop(); tree.append(x); todo += kids.get(x, [])
    for x in tree:
        try:
            tot += next(int(l.split()[1]) for l in open(f"/proc/{x}/status") if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    peak = max(peak, tot)
    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
    if pid:
        break
    time.sleep(0.02)
if status:
    sys.exit(f"bench-images: {sys.argv[1:]} failed")
print(ru.ru_maxrss, peak)
EOF
chmod 644 "$work/timed.sh" "$work/treerss.py"
mkdir "$work/out"
chown "$user:" "$work/out"

# fresh TOOL: a new empty store for TOOL ("sandy" or "podman") in $work/s,
# created by an untimed `images` (podman also starts its pause process).
fresh() {
	rm -rf "$work/s"
	mkdir -p "$work/s/data" "$work/s/config/containers" "$work/s/run"
	printf '[storage]\ndriver = "overlay"\n' >"$work/s/config/containers/storage.conf"
	printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$work/s/config/containers/containers.conf"
	chown -R "$user:" "$work/s"
	chmod 700 "$work/s/run"
	as_user "$work/s/out-warm" "$(tool "$1")" images
}
tool() { if [ "$1" = sandy ]; then echo "$bin/sandy"; else echo podman; fi; }
as_user() { runuser -u "$user" -- sh "$work/timed.sh" "$work/s" "$@"; }
# done_store: stop podman's pause process (it outlives the command) and
# remove the store (its files belong to subordinate ids: root removes them).
done_store() {
	local pid
	pid=$(cat "$work/s/run/libpod/tmp/pause.pid" 2>/dev/null || true)
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$work/s"
}
# measure ROW TOOL I CMD...: one timed run in a fresh store.
measure() {
	local row=$1 t=$2 i=$3
	shift 3
	fresh "$t"
	as_user "$work/s/cur" "$(tool "$t")" "$@"
	cp "$work/s/cur.us" "$work/out/$row-$t-$i.us"
	cp "$work/s/cur.rss" "$work/out/$row-$t-$i.rss"
	done_store
}

echo "bench-images: $RUNS runs of load and pull for sandy and podman ($(du -sm "$cache/image.tar" | cut -f1) MB archive, $ref)"
for i in $(seq "$RUNS"); do
	order="sandy podman"
	[ $((i % 2)) = 0 ] && order="podman sandy"
	for t in $order; do measure load "$t" "$i" load -i "$cache/image.tar"; done
	for t in $order; do measure pull "$t" "$i" pull --tls-verify=false "$ref"; done
done

# The whole tree's RSS, once each (untimed: the sampler costs CPU).
for t in sandy podman; do
	fresh "$t"
	runuser -u "$user" -- env XDG_DATA_HOME="$work/s/data" XDG_CONFIG_HOME="$work/s/config" XDG_RUNTIME_DIR="$work/s/run" \
		python3 "$work/treerss.py" "$(tool "$t")" pull --tls-verify=false "$ref" >"$work/out/tree-$t"
	done_store
done

# No second copy: podman pulls, then sandy pulls the same image into the
# same store RUNS times.
fresh podman
as_user "$work/s/podman-first" podman pull --tls-verify=false "$ref"
store=$work/s/data/containers/storage
before=$(du -sb "$store" | cut -f1)
layers_before=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$store/overlay-layers/layers.json")
for i in $(seq "$RUNS"); do
	as_user "$work/s/again" "$bin/sandy" pull --tls-verify=false "$ref"
	cp "$work/s/again.us" "$work/out/again-sandy-$i.us"
	cp "$work/s/again.rss" "$work/out/again-sandy-$i.rss"
done
after=$(du -sb "$store" | cut -f1)
layers_after=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$store/overlay-layers/layers.json")
done_store

python3 - "$work/out" "$before" "$after" "$layers_before" "$layers_after" <<'PY'
import glob, statistics, sys
out, before, after, lb, la = sys.argv[1], *map(int, sys.argv[2:])
def runs(row, tool):
    # (wall s, peak RSS MB, CPU s) of each run
    res = []
    for f in glob.glob(f"{out}/{row}-{tool}-*.us"):
        rss, user, sys_ = map(float, open(f[:-3] + ".rss").read().split())
        res.append((int(open(f).read()) / 1e6, rss / 1024, user + sys_))
    return res
def p90(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(0.9 * len(v)))]
med = {}
print(f"{'':27} {'median s':>8} {'p90 s':>7} {'CPU s':>6} {'RSS MB':>7}")
for row, label in (("load", "load"), ("pull", "pull"), ("again", "pull, podman's image")):
    for tool in ("sandy", "podman"):
        r = runs(row, tool)
        if not r:
            continue
        wall, rss, cpu = zip(*r)
        med[row, tool] = statistics.median(wall), statistics.median(cpu)
        print(f"{tool + ' ' + label:27} {med[row, tool][0]:8.2f} {p90(wall):7.2f} {med[row, tool][1]:6.2f} {statistics.median(rss):7.1f}")
for row in ("load", "pull"):
    (ws, cs), (wp, cp) = med[row, "sandy"], med[row, "podman"]
    print(f"{row}: sandy/podman {ws / wp:.2f} wall (target <= 0.8), {cs / cp:.2f} CPU")
for tool in ("sandy", "podman"):
    ru, tree = map(int, open(f"{out}/tree-{tool}").read().split())
    print(f"peak RSS of {tool} pull: {ru / 1024:.1f} MB (GNU time %M: the largest single process of its tree), "
          f"{tree / 1024:.1f} MB summed over the tree (sampled every 20 ms)")
print(f"no second copy: sandy pull of the image podman pulled: store {before} -> {after} bytes "
      f"({after - before:+d}), layers {lb} -> {la}, {med['again', 'sandy'][0]:.2f} s median")
PY
