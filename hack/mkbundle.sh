#!/usr/bin/env bash
# hack/mkbundle.sh DIR [ARG...] — make an OCI bundle in DIR from Debian's
# busybox-static: rootfs/ with busybox and its applet links, and a rootless
# config.json (from `sandy spec --rootless`) that runs ARG... (default: sh)
# without a terminal. SANDY names the sandy binary (default: sandy in PATH).
set -euo pipefail
dir=${1:?usage: hack/mkbundle.sh DIR [ARG...]}
shift
sandy=${SANDY:-sandy}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "mkbundle: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dir"
rootfs="$dir/rootfs"
rm -rf "$rootfs" "$dir/config.json"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,var,run,home}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf '127.0.0.1 localhost\n' >"$rootfs/etc/hosts"
# Empty, as in a distribution's rootfs or an exported container: the
# files sandy binds the network's resolv.conf and hostname over, so that
# the read-only root needs no stub layer (docs/design.md, "The raw init").
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"
(cd "$dir" && "$sandy" spec --rootless)
args_json='["sh"]'
if [ $# -gt 0 ]; then
	args_json=$(printf '%s\n' "$@" | python3 -c 'import json,sys; print(json.dumps([l.rstrip("\n") for l in sys.stdin]))')
fi
python3 - "$dir/config.json" "$args_json" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
json.dump(c, open(path, "w"), indent="\t")
PY
