#!/usr/bin/env bash
# hack/conformance/runc-bats.sh — run runc's own integration tests (runc
# v1.1.5, tests/integration/*.bats, the runtime-generic files) against sandy
# (and, for comparison, Debian's runc), as root and rootless as the test user,
# and print per-test results.
#
#   sudo bash hack/conformance/runc-bats.sh                     # sandy, root + rootless
#   RUNTIMES="sandy runc" sudo -E bash hack/conformance/runc-bats.sh
#   ONLY="exec.bats tty.bats" MODES=rootless sudo -E bash hack/conformance/runc-bats.sh
#
# Environment:
#   RUNTIMES      runtimes to test (default: sandy); runc comes from Debian
#                 (1.1.5+ds1, the same version as the tests). "sandy" runs with
#                 sandy's defaults, as a user calling it like runc would
#   MODES         "root rootless" (default); also "rootless-idmap" (below)
#   CGROUP_FILES=1  also run the cgroup files on a host with cgroup v1 (below)
#   ONLY          run only these .bats files (names under tests/integration)
#   SANDY         sandy binary (default: built from this checkout)
#   SANDY_ENV     environment for sandy, e.g. SANDY_ROOTFS_MODE=direct (default:
#                 none; on a host without a unified cgroup v2 hierarchy,
#                 SANDY_CGROUP_MANAGER=none: the manager auto ends on there,
#                 asked for, so `runc run`'s output, whose first line tests
#                 read, holds no "cgroup manager none" warning line)
#   TEST_TIMEOUT  seconds per .bats file (default 180)
#   WORK          scratch directory (default /tmp/sandy-runc-bats)
#   CACHE         where the downloaded source tarball is kept
#                 (default /var/cache/sandy-conformance)
#   TAG           suffix for result and log names (to compare two sandy builds)
#   SUMMARY_ONLY=1  print the summary of earlier runs and exit
#   STRICT=1      exit 1 when a test listed in expected/runc-bats-MODE.txt
#                 (the ones sandy passed when the list was last measured)
#                 does not pass for "sandy" (twice: a file with a failing
#                 listed test is run again once): a per-test regression gate.
#
# How it works. runc's code is not carried in this repository: the script
# downloads Debian's source tarball of runc 1.1.5 (runc_1.1.5+ds1.orig.tar.xz
# from deb.debian.org, checked against the sha256 pinned below, which is the
# one in Debian's runc_1.1.5+ds1-1+deb12u1.dsc), keeps it under $CACHE, and
# unpacks it under $WORK. runc is Apache-2.0; its LICENSE and NOTICE stay in
# the unpacked tree. bats, jq, gawk and gcc come from Debian (bats 1.8.2;
# helpers.bash needs >= 1.2.1).
#
# Changes to runc's tree, made at run time in the unpacked copy, nowhere else:
# - tests/integration/get-images.sh (which downloads busybox and Debian images
#   from GitHub and Docker Hub) is replaced by a three-line script that prints
#   BUSYBOX_IMAGE and DEBIAN_IMAGE, two tarballs made here: busybox is
#   Debian's busybox-static with its applet links (hack/mkbundle.sh's layout,
#   without /proc and /sys, as in Docker's busybox image);
#   "debian" is the same plus the host's static /sbin/ldconfig and an empty
#   /etc/ld.so.conf (the one test that uses it, hooks.bats, runs ldconfig).
# - contrib/cmd/recvtty/recvtty (the console-socket receiver the tty tests
#   use) is built from the tarball's own source, CGO_ENABLED=0, with its
#   dependencies from the Go module proxy.
# Nothing in runc's .bats files or helpers.bash is edited.
#
# Rootless is run as runc's tests/rootless.sh runs it: bats as $TEST_USER.
# "rootless" is rootless.sh's first pass (ROOTLESS_FEATURES empty): the
# config is `spec --rootless` as written (sandy fills in the mappings from
# /etc/subuid at run time; runc maps the user alone). "rootless-idmap" is
# its "idmap" pass: ROOTLESS_{UID,GID}MAP_{START,LENGTH} from the user's
# /etc/subuid and /etc/subgid ranges, AUX_UID/AUX_DIR for cwd.bats, and
# helpers.bash appends uid/gid mappings to the ones `spec --rootless` wrote.
# sandy writes none (by design, docs/cli/spec.md), so for sandy a wrapper
# adds runc's (container 0 -> the user, size 1) right after `spec --rootless`.
# The "cgroup" feature (a cgroup v1 tree chowned to the user) is not used:
# sandy manages cgroup v2 only, and on a hybrid host the tests check v1 files.
#
# Every .bats file runs on a terminal of its own (script(1), as runc's CI
# does) under `timeout`, in a private mount namespace made by
# root (mounts_recursive.bats and the tests' set-up mount on the host), in a
# session of its own: whatever a killed file leaves behind is killed by
# session id, and leftover containers are deleted.
set -uo pipefail

# The whole script is one function, so that editing this file while it runs
# cannot change what a running copy does (bash reads scripts as it goes).
main() {

RUNC_VERSION=1.1.5
RUNC_TARBALL=runc_1.1.5+ds1.orig.tar.xz
RUNC_URL=http://deb.debian.org/debian/pool/main/r/runc/$RUNC_TARBALL
RUNC_SHA256=e936cc563c4557178b3416aa1bb9e8231c53011beb8df67adedbfbaba4eacce7
TEST_USER=${SANDY_TEST_USER:-sandytest}
RUNTIMES=${RUNTIMES:-sandy}
MODES=${MODES:-root rootless}
TEST_TIMEOUT=${TEST_TIMEOUT:-180}
TAG=${TAG:-}
WORK=${WORK:-/tmp/sandy-runc-bats}
CACHE=${CACHE:-/var/cache/sandy-conformance}
sandy_env=
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || sandy_env=SANDY_CGROUP_MANAGER=none
SANDY_ENV=${SANDY_ENV-$sandy_env}
repo=$(cd "$(dirname "$0")/../.." && pwd)
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto} CGO_ENABLED=0

# The runtime-generic files. Left out, and why:
#   checkpoint.bats       checkpoint/restore with CRIU: runc's own feature
#                         (sandy has no checkpoint verb)
#   debug.bats            asserts runc's internal debug messages ("nsexec
#                         container setup", "child process in init()")
#   help.bats             asserts runc's name in --help ("runc - Open
#                         Container Initiative runtime", "runc checkpoint")
#   version.bats          asserts runc's name and version in --version
#   mounts_sshfs.bats     needs sshfs and an sshd accepting a key for a user
#                         "rootless" on localhost (skips itself without)
#   seccomp-notify.bats,  need runc's contrib/cmd/seccompagent, a cgo program
#   seccomp-notify-compat.bats  on libseccomp-golang, as the listener
#   cgroup_delegation.bats  every test requires systemd (skipped here)
#   cgroups.bats, update.bats, events.bats, pause.bats, ps.bats: resource
#                         limits, stats, freezer and cgroup paths. On a host
#                         with cgroup v1 controllers (this one is hybrid) the
#                         tests check v1 files, and sandy manages cgroup v2
#                         only; they are run where /sys/fs/cgroup is cgroup
#                         v2, or with CGROUP_FILES=1.
SUITE_FILES=(
	create.bats cwd.bats delete.bats dev.bats exec.bats hooks.bats
	kill.bats list.bats mask.bats mounts.bats mounts_recursive.bats
	no_pivot.bats root.bats run.bats seccomp.bats spec.bats start.bats
	start_detached.bats start_hello.bats state.bats tty.bats umask.bats
	userns.bats
)
CGROUP_SUITE_FILES=(cgroups.bats update.bats events.bats pause.bats ps.bats)
if [ "${CGROUP_FILES:-}" = 1 ] || [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
	SUITE_FILES+=("${CGROUP_SUITE_FILES[@]}")
fi

die() { echo "runc-bats.sh: $*" >&2; exit 2; }
[ "${SUMMARY_ONLY:-0}" = 1 ] && { summary; exit $?; }
[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages, and runs the rootless half as $TEST_USER)"

# --- packages and the test user ---------------------------------------------
# hack/setup.sh installs what every suite needs (gcc, busybox-static,
# uidmap, util-linux, procps, Go) and makes the test user, idempotently;
# this suite adds its own packages to its list.
extra="bats jq gawk curl xz-utils tar"
for r in $RUNTIMES; do case $r in runc) extra+=" runc" ;; esac; done
SANDY_EXTRA_PKGS="$extra" bash "$repo/hack/setup.sh" >/dev/null ||
	die "hack/setup.sh failed (it installs $extra, creates $TEST_USER and installs Go)"

mkdir -p "$WORK" "$CACHE"
chmod 0755 "$WORK"

# --- sandy ----------------------------------------------------------------------
if [[ " $RUNTIMES " == *" sandy "* ]]; then
	if [ -z "${SANDY:-}" ]; then
		echo "== building sandy"
		(cd "$repo" && go build -o "$WORK/sandy" ./cmd/sandy) || die "building sandy failed"
		SANDY=$WORK/sandy
	fi
	SANDY=$(readlink -f "$SANDY")
fi

# --- runc's tests, from Debian's source tarball -----------------------------------
tarball=$CACHE/$RUNC_TARBALL
if ! echo "$RUNC_SHA256  $tarball" | sha256sum --quiet -c - >/dev/null 2>&1; then
	echo "== downloading $RUNC_URL"
	curl -fsSL --retry 3 -o "$tarball.part" "$RUNC_URL" || die "downloading $RUNC_URL failed (is deb.debian.org reachable?)"
	echo "$RUNC_SHA256  $tarball.part" | sha256sum --quiet -c - ||
		die "$RUNC_URL: sha256 is not $RUNC_SHA256 (pinned from Debian's runc_1.1.5+ds1-1+deb12u1.dsc)"
	mv "$tarball.part" "$tarball"
fi
src=$WORK/runc-$RUNC_VERSION
integ=$src/tests/integration
# Bump PREP when make_images or the get-images.sh shim changes.
PREP=2
stamp="$RUNC_SHA256 prep=$PREP $(stat -c %Y /bin/busybox /sbin/ldconfig | tr '\n' ' ')"
if [ "$(cat "$src/.sandy-stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "== unpacking $RUNC_TARBALL, building recvtty and the images"
	rm -rf "$src"
	tar -C "$WORK" -xJf "$tarball" || die "unpacking $tarball failed"
	[ -d "$integ" ] || die "$tarball has no runc-$RUNC_VERSION/tests/integration"
	(cd "$src" && go build -mod=mod -o contrib/cmd/recvtty/recvtty ./contrib/cmd/recvtty) ||
		die "building runc's contrib/cmd/recvtty failed (is the Go module proxy reachable?)"
	make_images "$integ/testdata"
	cat >"$integ/get-images.sh" <<EOF
#!/bin/sh
# generated by hack/conformance/runc-bats.sh: images made from Debian's busybox-static
echo BUSYBOX_IMAGE=$integ/testdata/busybox.tar
echo DEBIAN_IMAGE=$integ/testdata/debian.tar
EOF
	chmod -R a+rX "$src"
	echo "$stamp" >"$src/.sandy-stamp"
fi
files=()
for f in "${SUITE_FILES[@]}"; do
	if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $f "* ]]; then continue; fi
	files+=("$f")
done
echo "== ${#files[@]} .bats files from runc $RUNC_VERSION"

for rt in $RUNTIMES; do
	for mode in $MODES; do
		run_suite "$rt" "$mode"
	done
done

summary
}

# make_images DIR: busybox.tar and debian.tar (see the header).
make_images() {
	local dir=$1 r
	r=$(mktemp -d)
	chmod 0755 "$r"
	# No proc or sys, as in Docker's busybox image: mask.bats makes them
	# symlinks with `ln -s`, which would otherwise link inside the directory.
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,tmp,root,var,home,lib}
	chmod 1777 "$r/tmp"
	chmod 0700 "$r/root"
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
	printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\ndaemon:x:1:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n' >"$r/etc/group"
	printf '127.0.0.1 localhost\n' >"$r/etc/hosts"
	tar -C "$r" --owner=0 --group=0 --numeric-owner -cf "$dir/busybox.tar" .
	rm -f "$r/sbin/ldconfig"
	cp /sbin/ldconfig "$r/sbin/ldconfig"
	: >"$r/etc/ld.so.conf"
	tar -C "$r" --owner=0 --group=0 --numeric-owner -cf "$dir/debian.tar" .
	rm -rf "$r"
}

# run_suite RUNTIME MODE: runs every file, writes $WORK/results/RUNTIME-MODE
# (one line per test: "FILE: NAME<TAB>pass|skip: WHY|fail").
run_suite() {
	local rt=$1 mode=$2 bin dir runas=() envs=() aux=
	case $rt in
	sandy) bin=$SANDY ;;
	*) bin=$(command -v "$rt") || { echo "$rt: not installed, skipped"; return; } ;;
	esac
	dir=$WORK/run-$rt$TAG-$mode
	rm -rf "$dir"
	mkdir -p "$dir/logs"
	# Each test's --root is $TMPDIR/bats-run-*/runc.*/state: a short
	# TMPDIR keeps the state directory, where sandy binds unix sockets
	# (108 bytes at most), short enough.
	local tmp
	tmp=$(mktemp -d /tmp/rb.XXXX)
	chmod 0755 "$tmp"
	ln -s "$tmp" "$dir/tmp"
	# RUNC names one binary: a wrapper carries sandy's environment and,
	# rootless-idmap, completes `spec --rootless` (see the header).
	local features=
	[ "$mode" = rootless-idmap ] && features=idmap
	if [ "$rt" = sandy ] && { [ -n "$SANDY_ENV" ] || [ -n "$features" ]; }; then
		cat >"$dir/runtime" <<EOF
#!/bin/sh
# generated by hack/conformance/runc-bats.sh
if [ -n "$features" ]; then
	for a in "\$@"; do
		case \$a in spec) spec=1 ;; --rootless) rootless=1 ;; --bundle=*) bundle=\${a#--bundle=} ;; esac
		[ "\$prev" = --bundle ] || [ "\$prev" = -b ] && bundle=\$a
		prev=\$a
	done
	if [ -n "\$spec" ] && [ -n "\$rootless" ]; then
		env $SANDY_ENV $bin "\$@" || exit
		c=\${bundle:-.}/config.json
		jq --argjson u "\$(id -u)" --argjson g "\$(id -g)" '.linux.uidMappings //= [{containerID: 0, hostID: \$u, size: 1}] | .linux.gidMappings //= [{containerID: 0, hostID: \$g, size: 1}]' "\$c" >"\$c.new" && mv "\$c.new" "\$c"
		exit
	fi
fi
exec env $SANDY_ENV $bin "\$@"
EOF
		chmod 0755 "$dir/runtime"
		bin=$dir/runtime
	fi
	envs=("PATH=$PATH" "HOME=/root" "TMPDIR=$tmp" "RUNC=$bin" "ROOTLESS_FEATURES=")
	if [ "$mode" != root ]; then
		local uid subuid sublen subgid subglen
		uid=$(id -u "$TEST_USER")
		read -r subuid sublen < <(awk -F: -v u="$TEST_USER" '$1 == u { print $2, $3; exit }' /etc/subuid)
		read -r subgid subglen < <(awk -F: -v u="$TEST_USER" '$1 == u { print $2, $3; exit }' /etc/subgid)
		[ -n "$subuid" ] && [ -n "$subgid" ] || die "$TEST_USER has no /etc/subuid or /etc/subgid range (run hack/setup.sh)"
		# cwd.bats: a directory owned by uid 1024 in the container
		# (helpers.bash maps container 1000.. to the range's start).
		aux=$(mktemp -d)
		chmod 0755 "$aux"
		chown "$((subuid - 1000 + 1024))" "$aux"
		mkdir -p "$dir/xdg"
		chmod 0700 "$dir/xdg"
		chown -R "$TEST_USER:" "$dir" "$tmp"
		envs=("PATH=$PATH" "TMPDIR=$tmp" "RUNC=$bin" "ROOTLESS_FEATURES=$features"
			"ROOTLESS_UIDMAP_START=$subuid" "ROOTLESS_UIDMAP_LENGTH=$sublen"
			"ROOTLESS_GIDMAP_START=$subgid" "ROOTLESS_GIDMAP_LENGTH=$subglen"
			"AUX_UID=1024" "AUX_DIR=$aux"
			"HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)" "USER=$TEST_USER" "XDG_RUNTIME_DIR=$dir/xdg")
		runas=(runuser -u "$TEST_USER" --)
	fi
	local res=$WORK/results/$rt$TAG-$mode
	mkdir -p "$WORK/results"
	: >"$res"
	rm -f "$res.retry" "$res.flaky"
	echo "== $rt$TAG $mode: ${#files[@]} files, ${TEST_TIMEOUT}s each"
	local f t0=$SECONDS
	for f in "${files[@]}"; do
		run_file "$f" "$dir/logs/${f%.bats}.tap" "$res"
	done
	# A listed test that fails gets one more chance: its file is run
	# again. runc 1.1.5's helpers start recvtty in the background and do
	# not wait for its socket, so a --console-socket test can lose that
	# race (runc as well as sandy) on a loaded machine.
	local exp=$repo/hack/conformance/expected/runc-bats-$mode.txt retry=() t
	if [ "$rt" = sandy ] && [ -f "$exp" ]; then
		while read -r t; do
			[ -z "$t" ] || grep -qxF "$t	pass" "$res" || ! grep -qF "$t	" "$res" || retry+=("${t%%: *}")
		done <"$exp"
	fi
	if [ ${#retry[@]} -gt 0 ]; then
		: >"$res.retry"
		for f in $(printf '%s\n' "${retry[@]}" | sort -u); do
			echo "  re-running $f (a listed test failed)"
			run_file "$f" "$dir/logs/${f%.bats}.retry.tap" "$res.retry"
		done
		while IFS=$'\t' read -r t _; do
			grep -qxF "$t	pass" "$res" && continue
			grep -qxF "$t	pass" "$res.retry" || continue
			grep -qxF "$t" "$exp" || continue
			echo "  flaky (failed, passed when its file was run again): $t" | tee -a "$res.flaky"
			awk -F'\t' -v t="$t" 'BEGIN { OFS = "\t" } $1 == t { $2 = "pass" } { print }' "$res" >"$res.new" && mv "$res.new" "$res"
		done <"$res.retry"
	fi
	rm -rf "$tmp" "$dir/tmp"
	[ -n "$aux" ] && rm -rf "$aux"
	echo "   ($((SECONDS - t0)) s)"
}

# run_file FILE LOG RESULTS: runs one .bats file as run_suite set up (its
# dir, tmp, runas, envs and bin) and appends its verdicts to RESULTS.
run_file() {
	local f=$1 log=$2 res=$3 rc sid pids
	rm -f "$dir/sid"
	# bats runs on a terminal of its own (script(1)), as in runc's
	# CI: tests that `run` a config with "terminal": true and no
	# --console-socket use the caller's terminal.
	(cd "$integ" && setsid --wait sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$dir/sid" \
		timeout -k 10 "$TEST_TIMEOUT" unshare --mount --propagation private \
		"${runas[@]}" script -qec "$(printf '%q ' env -i "${envs[@]}" bats --tap "$integ/$f") >$(printf %q "$log") 2>$(printf %q "$log.err")" /dev/null \
		</dev/null >"$log.pty" 2>&1)
	rc=$?
	echo "$rc" >"$log.rc"
	sid=$(cat "$dir/sid" 2>/dev/null)
	if [ -n "$sid" ]; then
		pids=$(ps -eo pid=,sid= | awk -v s="$sid" '$2 == s { print $1 }')
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	fi
	tap_results "$f" "$log" "$rc" >>"$res"
	grep -P "^\Q$f\E: " "$res" | awk -F'\t' '{ v = $2 == "pass" ? "ok  " : ($2 ~ /^skip/ ? "skip" : "FAIL"); printf "  %s  %s\n", v, $1 }'
	# Whatever the file left behind: its containers (each test has its
	# own --root under TMPDIR), then the scratch files.
	local st id
	for st in "$tmp"/*/runc.*/state; do
		[ -d "$st" ] || continue
		for id in $("${runas[@]}" "$bin" --root "$st" list -q 2>/dev/null); do
			"${runas[@]}" "$bin" --root "$st" delete --force "$id" >/dev/null 2>&1
		done
	done
	rm -rf "${tmp:?}/"* 2>/dev/null
}

# tap_results FILE LOG RC: one line per test of FILE, from bats' TAP; the
# tests a timeout cut off are "fail: not run".
tap_results() {
	local f=$1 log=$2 rc=$3 plan ran
	awk -v f="$f" '
		/^(not )?ok [0-9]+ / {
			ok = ($1 == "ok")
			line = $0
			sub(/^(not )?ok [0-9]+ /, "", line)
			v = ok ? "pass" : "fail"
			if (match(line, / # skip/)) {
				v = "skip:" substr(line, RSTART + 7)
				line = substr(line, 1, RSTART - 1)
			}
			printf "%s: %s\t%s\n", f, line, v
		}' "$log"
	plan=$(grep -m1 -oP '^1\.\.\K[0-9]+' "$log")
	ran=$(grep -cE '^(not )?ok [0-9]+ ' "$log")
	if [ -z "$plan" ] || [ "$ran" -lt "${plan:-0}" ]; then
		local why="exit $rc"
		{ [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && why="timed out after ${TEST_TIMEOUT}s"
		# The names of the tests that did not run, from the file itself.
		grep -oP '^@test "\K.*(?=" \{)' "$integ/$f" | tail -n +$((ran + 1)) |
			sed "s/^/$f: /; s/\$/\tfail: not run ($why)/"
	fi
}

# summary prints the counts and the tests that did not pass, per result file,
# and compares sandy's passes with hack/conformance/expected.
summary() {
	echo
	echo "== summary (runc $RUNC_VERSION integration tests; logs under $WORK/run-*/logs)"
	local rt mode res total passed skipped regressed=0 exp
	for rt in $RUNTIMES; do
		for mode in $MODES; do
			res=$WORK/results/$rt$TAG-$mode
			[ -f "$res" ] || continue
			total=$(wc -l <"$res")
			passed=$(awk -F'\t' '$2 == "pass"' "$res" | wc -l)
			skipped=$(awk -F'\t' '$2 ~ /^skip/' "$res" | wc -l)
			echo "$rt$TAG $mode: $passed passed, $((total - passed - skipped)) failed, $skipped skipped, of $total"
			awk -F'\t' '$2 ~ /^fail/ { printf "    FAIL  %s%s\n", $1, ($2 == "fail" ? "" : "  (" substr($2, 7) ")") }' "$res"
		done
	done
	for mode in $MODES; do
		res=$WORK/results/sandy$TAG-$mode
		exp=$repo/hack/conformance/expected/runc-bats-$mode.txt
		[[ " $RUNTIMES " == *" sandy "* ]] && [ -f "$res" ] && [ -f "$exp" ] || continue
		local t
		while read -r t; do
			[ -z "$t" ] && continue
			if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" ${t%%: *} "* ]]; then continue; fi
			if ! grep -qxF "$t	pass" "$res"; then
				echo "REGRESSION ($mode): $t passed before (expected/runc-bats-$mode.txt) and does not now"
				regressed=1
			fi
		done <"$exp"
		awk -F'\t' '$2 == "pass" { print $1 }' "$res" | LC_ALL=C sort | LC_ALL=C comm -13 "$exp" - |
			sed "s/^/new pass ($mode, add it to expected\/runc-bats-$mode.txt): /"
	done
	if [ "${STRICT:-0}" = 1 ] && [ "$regressed" = 1 ]; then
		echo "sandy regressed against hack/conformance/expected" >&2
		return 1
	fi
	return 0
}

# One line: bash has read it whole before main runs.
main "$@"; exit $?
