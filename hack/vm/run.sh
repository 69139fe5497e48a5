#!/usr/bin/env bash
# hack/vm/run.sh — run one command as an unprivileged user inside a Debian 12
# VM with systemd, pure cgroup v2 and a lingering user session; print its
# output and exit with its exit code.
#
#   hack/vm/run.sh [options] CMD [ARG...]
#
#   -s DIR       also share host DIR (read-only) at the same absolute path
#   -w DIR       also share host DIR read-write at the same absolute path
#                (what the guest user writes shows up owned by uid 1000)
#   -m MODE      how CMD is started as the user (NOTES.md, three ways):
#                  login         runuser -l: a PAM login session, like ssh (default)
#                  service       runuser -u from a system service, like a CI daemon
#                  user-manager  systemd-run --user inside user@1000.service
#                  root          as root, from the system service (a node's
#                                containerd: the CRI tests, hack/vm/cri-tests.sh)
#                (default: $SANDY_VM_MODE, else login)
#   -e NAME      pass the host's $NAME into the guest (repeatable; CI always is)
#   -o DIR       copy what the guest wrote to $SANDY_VM_OUT into host DIR
#                (also when the VM timed out or broke)
#   -r FILE      run FILE (a bash script) as root in the guest before CMD,
#                once user@1000.service is up: to break something a test
#                needs broken (linger off, a user@.service drop-in); its
#                output goes before CMD's, and a failure ends the run (125)
#
# Environment: SANDY_VM_ACCEL=tcg|kvm (default tcg: nested KVM does not work
# on our machines, see ../../../shared/vm/NOTES.md; kvm is refused on a CPU
# without vmx/svm), SANDY_VM_SMP (2),
# SANDY_VM_MEM (MiB, 1024), SANDY_VM_TIMEOUT (seconds, 900), SANDY_VM_DIR
# (/var/tmp/sandy-vm), SANDY_VM_KEEP=1 (keep the per-run dir).
#
# The repo is shared read-only at its host path and CMD runs in the current
# directory when that is inside a shared path (else the repo root). The guest
# user is "sandy", uid 1000, home /home/sandy, with XDG_RUNTIME_DIR=/run/user/1000
# and DBUS_SESSION_BUS_ADDRESS set; $SANDY_VM_OUT is a directory the guest may
# write to that ends up on the host (-o DIR copies it out).
#
# Exit status: CMD's, or 124 when the VM timed out, 125 when the VM broke
# before CMD finished (the last console lines are printed).
#
# Builds the image first when missing or stale (needs root then; see image.sh).
# A run itself needs no root, only read access to the image. Under TCG the VM
# keeps both host cores busy: boot once and run a whole suite per VM.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VMDIR=${SANDY_VM_DIR:-/var/tmp/sandy-vm}
ACCEL=${SANDY_VM_ACCEL:-tcg}
MODE=${SANDY_VM_MODE:-login}
ro=("$REPO")
rw=()
envs=(CI)

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
outdir=""
rootfile=""
while getopts "s:w:m:e:o:r:h" o; do
	case $o in
	s) ro+=("$(cd "$OPTARG" && pwd)") ;;
	w) rw+=("$(cd "$OPTARG" && pwd)") ;;
	m) MODE=$OPTARG ;;
	e) envs+=("$OPTARG") ;;
	o) outdir=$OPTARG ;;
	r) rootfile=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage
case $MODE in login | service | user-manager | root) ;; *) echo "hack/vm/run.sh: unknown mode $MODE (login, service, user-manager, root)" >&2; exit 2 ;; esac

IMG=$(SANDY_VM_DIR=$VMDIR "$HERE/image.sh")
command -v qemu-system-x86_64 >/dev/null || {
	echo "hack/vm/run.sh: qemu-system-x86_64 not found (apt-get install qemu-system-x86, or run hack/vm/image.sh as root)" >&2
	exit 125
}

case $ACCEL in
tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
kvm) accel=(-accel kvm -cpu host) ;;
*) echo "hack/vm/run.sh: SANDY_VM_ACCEL must be tcg or kvm, not $ACCEL" >&2; exit 2 ;;
esac
# A /dev/kvm on a CPU without vmx/svm is a paravirtual KVM (our machines:
# kvm_pvm), which QEMU cannot use: -cpu host aborts at once ("failed to
# set MSR 0x10a"), and without arch-capabilities the guest prints nothing
# in 150 s (rechecked 2026-12-06). Say so before QEMU's assertion.
if [ "$ACCEL" = kvm ] && ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	echo "hack/vm/run.sh: SANDY_VM_ACCEL=kvm, but this CPU has no vmx/svm flag: /dev/kvm is a paravirtual KVM ($(ls /sys/module | grep -E '^kvm_' | paste -sd ' ')), which QEMU cannot run this guest on; use the default, tcg" >&2
	exit 2
fi

mkdir -p "$VMDIR/runs"
RUN=$(mktemp -d "$VMDIR/runs/run.XXXXXX")
[ "${SANDY_VM_KEEP:-}" = 1 ] || trap 'rm -rf "$RUN"' EXIT
mkdir -p "$RUN/ctl/out"
chmod 0777 "$RUN/ctl" "$RUN/ctl/out"

cwd=$REPO
for d in "${ro[@]}" "${rw[@]}"; do
	case $PWD/ in "$d"/*) cwd=$PWD ;; esac
done

# cmd.sh: what the user runs. Quoting with %q keeps each ARG one word.
{
	echo 'export SANDY_VM=1 SANDY_VM_OUT=/mnt/ctl/out'
	for n in "${envs[@]}"; do
		[ -n "${!n+x}" ] && printf 'export %s=%q\n' "$n" "${!n}"
	done
	printf 'cd %q || exit 125\n' "$cwd"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$RUN/ctl/cmd.sh"
if [ -n "$rootfile" ]; then cp "$rootfile" "$RUN/ctl/root.sh"; fi

virtfs=()
mounts=""
i=0
for d in "${ro[@]}"; do
	virtfs+=(-virtfs "local,path=$d,mount_tag=s$i,security_model=none,readonly=on,id=s$i")
	mounts+="s$i $d"$'\n'
	i=$((i + 1))
done
for d in "${rw[@]}"; do
	virtfs+=(-virtfs "local,path=$d,mount_tag=s$i,security_model=none,id=s$i")
	mounts+="s$i $d"$'\n'
	i=$((i + 1))
done
printf '%s' "$mounts" >"$RUN/ctl/mounts"

# job.sh runs as root in the guest (vmjob.service); its exit status is CMD's.
cat >"$RUN/ctl/job.sh" <<EOF
set -u
while read -r tag dir; do
	mkdir -p "\$dir"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "\$tag" "\$dir" || exit 125
done </mnt/ctl/mounts
# Linger started user@1000.service; this blocks until it is up (session bus).
systemctl start user@1000.service || exit 125
if [ -f /mnt/ctl/root.sh ]; then bash -eu /mnt/ctl/root.sh >>/mnt/ctl/out.log 2>&1 || exit 125; fi
uenv=(HOME=/home/sandy USER=sandy LOGNAME=sandy SHELL=/bin/bash PATH=/usr/local/bin:/usr/bin:/bin
	XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus)
case $MODE in
login) runuser -l sandy -c 'exec bash /mnt/ctl/cmd.sh' ;;
service) runuser -u sandy -- env -i "\${uenv[@]}" bash /mnt/ctl/cmd.sh ;;
user-manager) runuser -u sandy -- env -i "\${uenv[@]}" systemd-run --user --quiet --wait --pipe --collect bash /mnt/ctl/cmd.sh ;;
root) env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash /mnt/ctl/cmd.sh ;;
esac </dev/null >>/mnt/ctl/out.log 2>&1
EOF

: >"$RUN/ctl/out.log"
chmod 0666 "$RUN/ctl/out.log"
start=$(date +%s%N)
timeout --foreground -k 10 "${SANDY_VM_TIMEOUT:-900}" qemu-system-x86_64 -machine pc "${accel[@]}" \
	-smp "${SANDY_VM_SMP:-2}" -m "${SANDY_VM_MEM:-1024}" \
	-nodefaults -no-user-config -no-reboot -display none \
	-bios /usr/share/qemu/qboot.rom \
	-serial "file:$RUN/console.log" \
	-kernel "$IMG/vmlinuz" -initrd "$IMG/initrd-vm.img" \
	-append 'root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=false panic=-1' \
	-drive "file=$IMG/rootfs.img,if=virtio,format=raw,snapshot=on" \
	-virtfs "local,path=$RUN/ctl,mount_tag=ctl,security_model=none,id=ctl" \
	"${virtfs[@]}" \
	-device virtio-rng-pci </dev/null &
qpid=$!
tail -n +1 -F --pid=$qpid "$RUN/ctl/out.log" 2>/dev/null &
tpid=$!
qrc=0
wait $qpid || qrc=$?
wait $tpid 2>/dev/null || true
ms=$((($(date +%s%N) - start) / 1000000))
[ "${SANDY_VM_KEEP:-}" = 1 ] && echo "hack/vm/run.sh: run dir $RUN" >&2
# What the guest wrote comes back also when it timed out or broke (a
# long suite's reports so far: hack/vm/cri-tests.sh KEEP=DIR).
if [ -n "$outdir" ]; then mkdir -p "$outdir" && cp -a "$RUN/ctl/out/." "$outdir/"; fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "hack/vm/run.sh: VM timed out after ${SANDY_VM_TIMEOUT:-900}s; last console lines:" >&2
	tail -n 20 "$RUN/console.log" >&2 || true
	exit 124
fi
if [ ! -s "$RUN/ctl/rc" ]; then
	echo "hack/vm/run.sh: the VM stopped (qemu exit $qrc) before the command finished; last console lines:" >&2
	tail -n 20 "$RUN/console.log" >&2 || true
	[ -s "$RUN/ctl/job.log" ] && cat "$RUN/ctl/job.log" >&2
	exit 125
fi
rc=$(cat "$RUN/ctl/rc")
[ -s "$RUN/ctl/job.log" ] && cat "$RUN/ctl/job.log" >&2
echo "hack/vm/run.sh: exit $rc, $((ms / 1000)).$(printf %03d $((ms % 1000)))s round trip ($ACCEL)" >&2
exit "$rc"
