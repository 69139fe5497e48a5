#!/usr/bin/env bash
# hack/conformance/podman.sh — Debian's podman (4.3.1) as a rootless client of
# sandy: podman --runtime SANDY, run as the test user. Each step prints PASS
# or FAIL with the exact error; the summary counts them.
#
#   sudo bash hack/conformance/podman.sh
#   SANDY=/tmp/sandy RUNTIME_UNDER_TEST=crun sudo -E bash hack/conformance/podman.sh
#
# Environment:
#   SANDY               sandy binary (default: built from this checkout)
#   RUNTIME_UNDER_TEST  a path or name to test instead of sandy (e.g. crun), for comparison
#   STEP_TIMEOUT        seconds per podman command (default 60)
#   PORT                host port for the -p step (default 8080)
#   WORK                scratch directory (default /tmp/sandy-podman)
#   STRICT=1            exit 1 if any step fails
#
# The host has no systemd, so podman gets cgroup_manager="cgroupfs" and
# events_logger="file" in the test user's containers.conf, and an
# XDG_RUNTIME_DIR made here. The image is a busybox-static rootfs imported
# with `podman import`. Servers listen on 127.0.0.1 only.
set -uo pipefail

TEST_USER=${SANDY_TEST_USER:-sandytest}
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
PORT=${PORT:-8080}
WORK=${WORK:-/tmp/sandy-podman}
IMAGE=localhost/busybox
repo=$(cd "$(dirname "$0")/../.." && pwd)
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto} CGO_ENABLED=0

die() { echo "podman.sh: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs podman as $TEST_USER)"

pkgs=(podman conmon slirp4netns uidmap fuse-overlayfs busybox-static curl)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi
grep -q "^$TEST_USER:" /etc/subuid 2>/dev/null || bash "$repo/hack/setup.sh" >/dev/null || die "hack/setup.sh failed"

mkdir -p "$WORK"
chmod 0755 "$WORK"
if [ -n "${RUNTIME_UNDER_TEST:-}" ]; then
	runtime=$(command -v "$RUNTIME_UNDER_TEST") || die "$RUNTIME_UNDER_TEST not found"
else
	if [ -z "${SANDY:-}" ]; then
		(cd "$repo" && go build -o "$WORK/sandy" ./cmd/sandy) || die "building sandy failed"
		SANDY=$WORK/sandy
	fi
	# Where the test user can execute it.
	install -m 0755 "$SANDY" "$WORK/sandy.bin"
	runtime=$WORK/sandy.bin
fi

uid=$(id -u "$TEST_USER")
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
xdg=/run/user/$uid
install -d -o "$TEST_USER" -g "$(id -g "$TEST_USER")" -m 0700 /run/user/"$uid"
install -d -o "$TEST_USER" -g "$(id -g "$TEST_USER")" "$home/.config" "$home/.config/containers"
cat >"$home/.config/containers/containers.conf" <<'EOF'
# written by hack/conformance/podman.sh: no systemd on this host
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
chown "$TEST_USER:" "$home/.config/containers/containers.conf"

as_user() {
	(cd / && runuser -u "$TEST_USER" -- env -i "PATH=$PATH" "HOME=$home" "USER=$TEST_USER" "LOGNAME=$TEST_USER" \
		"XDG_RUNTIME_DIR=$xdg" "$@")
}
pm() { timeout -k 5 "$STEP_TIMEOUT" runuser -u "$TEST_USER" -- env -i "PATH=$PATH" "HOME=$home" "USER=$TEST_USER" \
	"LOGNAME=$TEST_USER" "XDG_RUNTIME_DIR=$xdg" podman --runtime "$runtime" "$@"; }

results=()
pass=0 fail=0
# step NAME CHECK-DESCRIPTION: records the outcome of the last check.
record() {
	local name=$1 ok=$2 detail=$3
	if [ "$ok" = 1 ]; then
		pass=$((pass + 1))
		results+=("PASS  $name")
		echo "PASS  $name"
	else
		fail=$((fail + 1))
		detail=$(printf '%s' "$detail" | grep -v '^\s*$' | tail -n 6 | sed 's/^/        /')
		results+=("FAIL  $name"$'\n'"$detail")
		printf 'FAIL  %s\n%s\n' "$name" "$detail"
	fi
}
out=$WORK/out err=$WORK/err

echo "== podman $(podman --version | awk '{print $3}') --runtime $runtime, rootless as $TEST_USER"
as_user podman rm -af -t 0 >/dev/null 2>&1

# --- image ---------------------------------------------------------------------
r=$WORK/rootfs
rm -rf "$r"
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,var,run,home,www}
chmod 1777 "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
echo "hello from sandy" >"$r/www/index.html"
if tar -C "$r" --owner=0 --group=0 --numeric-owner -c . | as_user podman import - "$IMAGE" >"$out" 2>"$err"; then
	record "import busybox image" 1 ""
else
	record "import busybox image" 0 "$(cat "$err")"
	die "cannot go on without an image"
fi

# --- 1. run --rm ---------------------------------------------------------------------
pm run --rm "$IMAGE" echo hello-sandy >"$out" 2>"$err"
rc=$?
[ $rc -eq 0 ] && grep -qx hello-sandy "$out"
record "run --rm" $((! $?)) "exit $rc; stdout: $(head -c 300 "$out"); stderr: $(cat "$err")"

pm run --rm "$IMAGE" sh -c 'exit 7' >"$out" 2>"$err"
rc=$?
record "run --rm propagates exit status 7" $((rc == 7)) "exit $rc (want 7); stderr: $(cat "$err")"

# --- 2. run -d + exec + logs + stop + rm ------------------------------------------
pm rm -f -t 0 sandy-d >/dev/null 2>&1
pm run -d --name sandy-d "$IMAGE" sh -c 'echo started; exec sleep 1000' >"$out" 2>"$err"
rc=$?
record "run -d" $((rc == 0)) "exit $rc; stderr: $(cat "$err")"
if [ $rc -eq 0 ]; then
	sleep 1
	pm exec sandy-d echo from-exec >"$out" 2>"$err"
	rc=$?
	[ $rc -eq 0 ] && grep -qx from-exec "$out"
	record "exec" $((! $?)) "exit $rc; stdout: $(head -c 300 "$out"); stderr: $(cat "$err")"

	pm logs sandy-d >"$out" 2>"$err"
	rc=$?
	[ $rc -eq 0 ] && grep -qx started "$out"
	record "logs" $((! $?)) "exit $rc; stdout: $(head -c 300 "$out"); stderr: $(cat "$err")"

	start=$(date +%s)
	pm stop -t 3 sandy-d >"$out" 2>"$err"
	rc=$?
	took=$(($(date +%s) - start))
	state=$(pm inspect -f '{{.State.Status}}' sandy-d 2>&1)
	[ $rc -eq 0 ] && [ "$state" = exited ]
	record "stop (took ${took}s)" $((! $?)) "exit $rc; state after: $state; stderr: $(cat "$err")"

	pm rm sandy-d >"$out" 2>"$err"
	rc=$?
	record "rm" $((rc == 0)) "exit $rc; stderr: $(cat "$err")"
fi
pm rm -f -t 0 sandy-d >/dev/null 2>&1

# --- 3. run -t ---------------------------------------------------------------------------
pm run --rm -t "$IMAGE" sh -c 'tty; stty size' >"$out" 2>"$err"
rc=$?
[ $rc -eq 0 ] && grep -q '^/dev/pts/' "$out"
record "run -t" $((! $?)) "exit $rc; stdout: $(tr -d '\r' <"$out" | head -c 300); stderr: $(cat "$err")"

# --- 4. run -p 127.0.0.1:PORT:80 with busybox httpd --------------------------------------
pm rm -f -t 0 sandy-web >/dev/null 2>&1
pm run -d --name sandy-web -p "127.0.0.1:$PORT:80" "$IMAGE" httpd -f -p 80 -h /www >"$out" 2>"$err"
rc=$?
if [ $rc -ne 0 ]; then
	record "run -p 127.0.0.1:$PORT:80 (httpd)" 0 "exit $rc; stderr: $(cat "$err")"
else
	got=
	for _ in $(seq 20); do
		got=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/index.html" 2>&1) && [ "$got" = "hello from sandy" ] && break
		sleep 0.5
	done
	[ "$got" = "hello from sandy" ]
	record "run -p 127.0.0.1:$PORT:80 (httpd reached from the host)" $((! $?)) "curl got: ${got:-nothing}; podman logs: $(pm logs sandy-web 2>&1 | tail -n 3)"
fi
pm rm -f -t 0 sandy-web >/dev/null 2>&1

# --- 5. --userns=keep-id --------------------------------------------------------------------
pm run --rm --userns=keep-id "$IMAGE" id >"$out" 2>"$err"
rc=$?
[ $rc -eq 0 ] && grep -q "^uid=$uid" "$out"
record "run --userns=keep-id (uid $uid inside)" $((! $?)) "exit $rc; stdout: $(head -c 300 "$out"); stderr: $(cat "$err")"

echo
echo "== summary: podman --runtime $runtime (rootless, $TEST_USER): $pass passed, $fail failed"
for r in "${results[@]}"; do echo "$r"; done
[ "${STRICT:-0}" = 1 ] && [ "$fail" -gt 0 ] && exit 1
exit 0
