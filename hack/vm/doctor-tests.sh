#!/usr/bin/env bash
# hack/vm/doctor-tests.sh — `sandy doctor`'s systemd rows tried for real in
# the systemd VM (hack/vm/run.sh), two boots:
#   1. as the VM is (lingering user, user@.service delegating cpu memory
#      pids): the cgroup row starts a no-op transient scope on the user bus
#      and reads "cpu memory pids" delegated to it (ok), linger is on (ok),
#      exit 0; then, in the same session, no D-Bus session
#      (DBUS_SESSION_BUS_ADDRESS unset, XDG_RUNTIME_DIR an empty directory):
#      the cgroup row names the missing bus and the fix, and run says the
#      same in its one "cgroup manager none" line;
#   2. broken by root first (run.sh -r): linger off (loginctl
#      disable-linger) and a user@.service drop-in that delegates pids only:
#      the linger row names it with `loginctl enable-linger sandy`, the cgroup
#      row names the controllers not delegated with the drop-in as root fix.
# Prints "N passed, N failed" and exits non-zero on any failure. Run as root
# the first time (the image build needs it). About 1-3 min under TCG.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
mkdir -p "${SANDY_VM_DIR:-/var/tmp/sandy-vm}"
OUT=$(mktemp -d "${SANDY_VM_DIR:-/var/tmp/sandy-vm}/doctor.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
chmod 0755 "$OUT"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$OUT/sandy" ./cmd/sandy)
SANDY="$OUT/sandy" bash "$REPO/hack/mkbundle.sh" "$OUT/bundle" true >/dev/null

# The checks, run as the VM user; $1 names the boot. jq is not in the
# guest: rows are read with grep on --json (one check per line).
cat >"$OUT/checks.sh" <<'EOF'
S=$(dirname "$0")/sandy; pass=0; fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }
row() { echo "$1" | tr '\n' ' ' | sed 's/},/},\n/g' | grep "\"name\": \"$2\""; }
has() { case $1 in *"$2"*) return 0 ;; esac; return 1; }
case $1 in
session)
	out=$("$S" doctor --json 2>&1); rc=$?
	cg=$(row "$out" cgroup); lg=$(row "$out" linger)
	if [ $rc = 0 ] && has "$cg" '"status": "ok"' && has "$cg" 'transient scope sandy-doctor-' && has "$cg" 'with controllers \"cpu memory pids\" delegated'; then
		ok "doctor: a no-op scope on the user bus, cpu memory pids delegated"; else ko "doctor cgroup (rc=$rc): $cg"; fi
	has "$lg" '"status": "ok"' && has "$lg" 'linger is on for sandy' && ok "doctor: linger on" || ko "doctor linger: $lg"
	[ -z "$(systemctl --user list-units --all --plain --no-legend 'sandy-doctor-*' 2>/dev/null)" ] && ok "doctor's scope is gone" ||
		ko "doctor's scope left: $(systemctl --user list-units --all --plain --no-legend 'sandy-doctor-*')"
	# No D-Bus session: the variables a session sets point nowhere.
	empty=$(mktemp -d)
	out=$(env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="$empty" "$S" --root "$empty/state" doctor --json 2>&1); rc=$?
	cg=$(row "$out" cgroup)
	if [ $rc = 0 ] && has "$cg" '"status": "warn"' && has "$cg" "cgroup manager none: no user session bus at $empty/bus" &&
		has "$cg" 'DBUS_SESSION_BUS_ADDRESS or XDG_RUNTIME_DIR set' && has "$out" '"cgroup": "none"'; then
		ok "doctor without a D-Bus session: the missing bus and the fix"; else ko "doctor without a D-Bus session (rc=$rc): $cg"; fi
	run=$(cd "$(dirname "$0")" && env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="$empty" "$S" --root "$empty/state" run --network=none bundle 2>&1); rc=$?
	n=$(echo "$run" | grep -c '^sandy: warning: cgroup manager none: no user session bus at ')
	[ $rc = 0 ] && [ "$n" = 1 ] && ok "run without a D-Bus session: one line, doctor's words" || ko "run without a D-Bus session (rc=$rc): $run"
	;;
broken)
	out=$("$S" doctor --json 2>&1); rc=$?
	cg=$(row "$out" cgroup); lg=$(row "$out" linger)
	if [ $rc = 0 ] && has "$lg" '"status": "warn"' && has "$lg" 'linger is off for sandy (systemd-logind)' && has "$lg" 'loginctl enable-linger sandy'; then
		ok "doctor: linger off, with loginctl enable-linger"; else ko "doctor linger (rc=$rc): $lg"; fi
	if has "$cg" '"status": "warn"' && has "$cg" 'controller is not delegated to uid 1000' && has "$cg" 'Delegate=cpu memory pids' &&
		has "$cg" 'systemctl daemon-reload'; then
		ok "doctor: controllers not delegated, with the drop-in"; else ko "doctor cgroup: $cg"; fi
	fix=$("$S" doctor --fix-script)
	has "$fix" 'loginctl enable-linger sandy' && has "$fix" '/etc/systemd/system/user@.service.d/delegate.conf' && ok "--fix-script: linger and the drop-in" || ko "--fix-script: $fix"
	;;
esac
echo "$pass passed, $fail failed"
[ $fail = 0 ]
EOF
cat >"$OUT/break.sh" <<'EOF'
loginctl disable-linger sandy
mkdir -p /etc/systemd/system/user@.service.d
# Delegate= lists add up (Debian's user@.service says cpu memory pids): an
# empty assignment resets the list first.
printf '[Service]\nDelegate=\nDelegate=pids\n' >/etc/systemd/system/user@.service.d/delegate.conf
systemctl daemon-reload
systemctl restart user@1000.service
u=/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service
echo "root: linger off; user@1000.service has $(cat $u/cgroup.controllers), enables $(cat $u/cgroup.subtree_control)"
EOF
rc=0
"$HERE/run.sh" -s "$OUT" bash "$OUT/checks.sh" session || rc=1
"$HERE/run.sh" -s "$OUT" -r "$OUT/break.sh" bash "$OUT/checks.sh" broken || rc=1
exit $rc
