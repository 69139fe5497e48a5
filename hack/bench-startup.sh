#!/usr/bin/env bash
# hack/bench-startup.sh — start-to-exit of busybox /bin/true, rootless, as the
# unprivileged test user, for sandy, runc and crun measured in the same run,
# plus the floor (unshare of the same namespaces + exec of true). Prints the
# median and p90 of each, the ratios sandy/crun and sandy/runc, and the peak
# RSS of the host-side sandy process. Rows: sandy, runc and crun on runc's
# rootless config (one id mapped, no network namespace); sandy-subuid on
# sandy's own (`sandy spec --rootless`: the full subordinate map) with
# --network=none; sandy-subuid-net the same with sandy's default network
# (ratio printed: the network's teardown must stay out of run's wait);
# sandy-exec and crun-exec: `exec ID /bin/true` into a running container of
# runc's rootless config (target sandy <= 0.8x crun). Figures (2 cores,
# load ~1, RUNS=100, 2026-12-06, before issue 14's changes): sandy 62.8
# ms, crun 33.7, runc 63.5 (sandy/crun 1.87); sandy-exec 52.7 ms,
# crun-exec 16.0 (3.28: sandy's --debug put 22 ms in "starting the exec
# init", the nsenter → spawn helper → exec init chain); peak RSS 9.2 MB.
# After them (no spawn helper on exec, the sealed copy by sendfile on a
# goroutine, the owner scan beside the init's start, ...), paired runs
# against crun at load 10-12 (this script's own rows then moved by up to
# 3x between commands): run 1.56 -> 1.31, exec 2.75 -> 2.16 of crun's
# (docs/design.md#performance has the timelines and the breakdown).
# Run as root (it installs runc, crun, hyperfine and time, and hides the
# hybrid host's cgroup2 controllers file from crun in a private mount
# namespace, never on the host).
#
#   RUNS=200 bash hack/bench-startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-100}
user=${SANDY_TEST_USER:-sandytest}
SANDY_EXTRA_PKGS="runc crun hyperfine time" bash hack/setup.sh >/dev/null
export PATH=/usr/local/go/bin:$PATH
work=$(mktemp -d /tmp/sandy-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$work/sandy" ./cmd/sandy
SANDY="$work/sandy" bash hack/mkbundle.sh "$work/sandy-bundle" /bin/true >/dev/null
# runc's own rootless config (single mapping: own uid → 0) for runc and crun,
# and for sandy too, so all three run the same config.
mkdir -p "$work/oci-bundle"
cp -a "$work/sandy-bundle/rootfs" "$work/oci-bundle/rootfs"
chown -R "$user:" "$work"
runuser -u "$user" -- sh -c "cd $work/oci-bundle && runc spec --rootless"
python3 - "$work/oci-bundle/config.json" "$work/oci-sleep/config.json" <<'PY'
import json, os, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=1)
# The exec rows' container: the same config, its process a long sleep,
# the rootfs shared.
c["process"]["args"] = ["/bin/sleep", "3600"]
c["root"]["path"] = os.path.join(os.path.dirname(p), "rootfs")
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
chown -R "$user:" "$work"
cat >"$work/bench-inner.sh" <<INNER
set -eu
cd $work
hyperfine --style none --warmup 5 --runs $RUNS --export-json $work/result.json -N \
  -n floor  'unshare --user --map-root-user --mount --pid --fork --ipc --uts --net /bin/true' \
  -n sandy-subuid "$work/sandy --root $work/st-sandy run --network=none $work/sandy-bundle" \
  -n sandy-subuid-net "$work/sandy --root $work/st-sandy run $work/sandy-bundle" \
  -n sandy  "$work/sandy --root $work/st-sandy run $work/oci-bundle" \
  -n crun   "sh -c 'exec crun --root $work/st-crun run -b $work/oci-bundle c\\\$\\\$'" \
  -n runc   "sh -c 'exec runc --root $work/st-runc run -b $work/oci-bundle c\\\$\\\$'" >/dev/null
# exec of /bin/true into a running container (issue 14's third row).
$work/sandy --root $work/st-sandy run -d --bundle $work/oci-sleep ex1
crun --root $work/st-crun run -d -b $work/oci-sleep ex1
hyperfine --style none --warmup 5 --runs $RUNS --export-json $work/exec.json -N \
  -n sandy-exec "$work/sandy --root $work/st-sandy exec ex1 /bin/true" \
  -n crun-exec  "crun --root $work/st-crun exec ex1 /bin/true" >/dev/null
$work/sandy --root $work/st-sandy delete -f ex1
crun --root $work/st-crun delete -f ex1
INNER
chmod 755 "$work/bench-inner.sh"
# crun refuses a hybrid host (cgroup2 mounted with controllers elsewhere)
# unless cgroup.controllers is hidden: do it in a private mount namespace.
hide=""
[ -e /sys/fs/cgroup/unified/cgroup.controllers ] && hide="mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers;"
unshare --mount --propagation private sh -c "$hide runuser -u $user -- sh $work/bench-inner.sh"
rss=$(runuser -u "$user" -- /usr/bin/time -f %M "$work/sandy" --root "$work/st-sandy" run "$work/oci-bundle" 2>&1 >/dev/null | tail -1)
python3 - "$work/result.json" "$rss" "$work/exec.json" <<'PY'
import json, sys, statistics
res = {r["command"]: sorted(r["times"]) for f in (sys.argv[1], sys.argv[3]) for r in json.load(open(f))["results"]}
def p(ts, q): return ts[min(len(ts) - 1, int(q * len(ts)))]
print(f"{'':14} {'median ms':>10} {'p90 ms':>8}")
med = {}
for name, ts in res.items():
    med[name] = statistics.median(ts) * 1000
    print(f"{name:14} {med[name]:10.2f} {p(ts, 0.9) * 1000:8.2f}")
print(f"sandy/crun  {med['sandy'] / med['crun']:.2f}   (target <= 0.8)")
print(f"sandy/runc  {med['sandy'] / med['runc']:.2f}")
print(f"sandy-exec/crun-exec  {med['sandy-exec'] / med['crun-exec']:.2f}   (target <= 0.8: exec of /bin/true into a running container)")
print(f"sandy-subuid/crun  {med['sandy-subuid'] / med['crun']:.2f}  (sandy's own rootless config: full subordinate map through newuidmap + newgidmap, no network)")
print(f"sandy-subuid-net/sandy-subuid  {med['sandy-subuid-net'] / med['sandy-subuid']:.2f}  (target <= 1.2: the default network's cost in the user's wait; its teardown is a reaper's)")
print(f"sandy-subuid-net - sandy-subuid  {med['sandy-subuid-net'] - med['sandy-subuid']:.1f} ms  (slirp4netns networking: start, and what of the teardown run waits for)")
print(f"peak RSS of sandy run (GNU time %M: the largest of sandy and the processes it waited for): {int(sys.argv[2]) / 1024:.1f} MB (target <= 10 MB)")
PY
