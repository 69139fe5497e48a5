#!/usr/bin/env bash
# hack/demo.sh — the main job on a fresh Debian 12 machine, as root: set up
# (packages, test user), build a static sandy, make a busybox bundle and run
# it rootless as the unprivileged test user.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
. hack/go-toolchain.sh
use_go_toolchain
user=${SANDY_TEST_USER:-sandytest}
out=/tmp/sandy-demo
rm -rf "$out"
mkdir -p "$out"
chmod 755 "$out"
CGO_ENABLED=0 go build -trimpath -o "$out/sandy" ./cmd/sandy
# sandy's own network program, beside sandy as hack/install.sh puts it.
CGO_ENABLED=0 go build -trimpath -o "$out/sandy-net" ./internal/cmd/sandy-net
echo "built $out/sandy ($(stat -c %s "$out/sandy") bytes, $(file -b "$out/sandy" 2>/dev/null | cut -d, -f1-2 || echo static))"
SANDY="$out/sandy" bash hack/mkbundle.sh "$out/bundle" sh -c \
	'echo "hello from a rootless container"; id; echo "pid $$ of: $(ps -o pid= | wc -l) process(es)"; echo "hostname $(hostname)"; cat /proc/self/uid_map; touch /probe && echo "root is writable (copy-on-write layer)"'
# `sandy spec` writes a read-only root, as `runc spec` does; the demo shows
# the copy-on-write layer, so it asks for a writable one.
python3 - "$out/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"]["readonly"] = False
json.dump(c, open(sys.argv[1], "w"), indent="\t")
PY
chown -R "$user:" "$out/bundle"
echo "+ runuser -u $user -- $out/sandy run $out/bundle"
runuser -u "$user" -- "$out/sandy" run "$out/bundle"
if [ -e "$out/bundle/rootfs/probe" ]; then
	echo "bundle untouched: NO (the container's write reached the bundle)" >&2
	exit 1
fi
echo "bundle untouched: yes"
