#!/usr/bin/env bash
# hack/vm/image.sh — build (or reuse) the Debian 12 guest image the VM tests boot.
#
#   hack/vm/image.sh            build if missing or stale, print the image dir
#   hack/vm/image.sh --force    rebuild
#
# Needs root (mmdebstrap --mode=root, and mkfs.ext4 -d of a root-owned tree).
# Installs its host packages (qemu-system-x86 mmdebstrap e2fsprogs xz-utils)
# when missing. The image lives outside the repo, in $SANDY_VM_DIR (default
# /var/tmp/sandy-vm/image): rootfs.img, vmlinuz, initrd-vm.img and a stamp
# holding the sha256 of this script; it is rebuilt only when this script
# changes. Runs never write to it (QEMU opens it with snapshot=on), so any
# user who can read it can boot it.
#
# The guest: systemd 252 as PID 1 on pure cgroup v2, user "sandy" (uid 1000,
# subuid/subgid 100000:65536) lingering, so user@1000.service and its session
# bus /run/user/1000/bus are up at boot; crun and runc for comparison numbers;
# containerd and the CNI plugins for the CRI tests (hack/vm/cri-tests.sh),
# which start a containerd of their own (the system's containerd.service is
# masked);
# a tiny busybox initramfs; a system unit (vmjob.service) that mounts the 9p
# "ctl" share and runs /mnt/ctl/job.sh as root, then powers off. The job
# script itself comes from hack/vm/run.sh on every run, so changing what a run
# does never needs a rebuild. See ../../../shared/vm/NOTES.md for why each
# step is there (timings under TCG).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
OUT=${SANDY_VM_DIR:-/var/tmp/sandy-vm}/image
GUEST_USER=sandy

# customize runs inside mmdebstrap's customize hook: on the host, with $1 the
# guest root. Guest tools (useradd, modprobe, cpio) run through chroot.
customize() {
	local r=$1
	chroot "$r" useradd --create-home --uid 1000 --user-group --shell /bin/bash "$GUEST_USER"
	echo "$GUEST_USER:100000:65536" >"$r/etc/subuid"
	echo "$GUEST_USER:100000:65536" >"$r/etc/subgid"
	# What `loginctl enable-linger` does; logind starts user@1000.service at boot.
	mkdir -p "$r/var/lib/systemd/linger"
	touch "$r/var/lib/systemd/linger/$GUEST_USER"
	# No root line: the initrd mounts / rw, and a /dev/vda line would make boot
	# wait for udev's dev-vda.device (6 s under TCG).
	echo '# root is mounted rw by the initrd' >"$r/etc/fstab"
	echo sandyvm >"$r/etc/hostname"
	local u
	for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
		e2scrub_reap.service fstrim.timer systemd-tmpfiles-clean.timer getty.target \
		serial-getty@ttyS0.service getty@tty1.service systemd-timesyncd.service \
		systemd-pstore.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
		dev-hugepages.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
		sys-kernel-config.mount sys-fs-fuse-connections.mount modprobe@drm.service \
		modprobe@dm_mod.service modprobe@loop.service modprobe@configfs.service \
		modprobe@efi_pstore.service systemd-update-utmp-runlevel.service \
		systemd-remount-fs.service containerd.service; do
		ln -sf /dev/null "$r/etc/systemd/system/$u"
	done

	# The job runner: mount the ctl share, hand over to the per-run job.sh.
	cat >"$r/usr/local/sbin/vmjob" <<'EOF'
#!/bin/bash
# Runs the per-run /mnt/ctl/job.sh (written by hack/vm/run.sh), then powers
# off with reboot(2) directly: the root disk is a throw-away snapshot and 9p
# writes are already on the host.
mkdir -p /mnt/ctl
rc=125
trap 'echo "$rc" >/mnt/ctl/rc; sync; systemctl poweroff -ff' EXIT
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl /mnt/ctl || exit
bash /mnt/ctl/job.sh >/mnt/ctl/job.log 2>&1
rc=$?
EOF
	chmod 0755 "$r/usr/local/sbin/vmjob"
	cat >"$r/etc/systemd/system/vmjob.service" <<'EOF'
[Unit]
Description=sandy VM test job
After=systemd-user-sessions.service systemd-logind.service dbus.service
[Service]
Type=exec
ExecStart=/usr/local/sbin/vmjob
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
EOF
	ln -sf /etc/systemd/system/vmjob.service "$r/etc/systemd/system/multi-user.target.wants/vmjob.service"

	# A tiny initramfs (saves ~4 s of TCG boot over Debian's).
	local kver
	kver=$(basename "$(ls -d "$r"/lib/modules/* | head -1)")
	local ird="$r/tmp/initrd"
	rm -rf "$ird"
	mkdir -p "$ird"/{bin,dev,proc,newroot,lib/modules}
	cp "$r/bin/busybox" "$ird/bin/busybox"
	local mods=() m
	while read -r m; do
		mkdir -p "$ird/$(dirname "$m")"
		cp "$r$m" "$ird$m"
		mods+=("$m")
	done < <(chroot "$r" modprobe -a -S "$kver" --show-depends virtio_pci virtio_blk ext4 9p 9pnet_virtio |
		awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++')
	{
		echo '#!/bin/busybox sh'
		echo '/bin/busybox mount -t proc proc /proc'
		echo '/bin/busybox mount -t devtmpfs dev /dev'
		for m in "${mods[@]}"; do echo "/bin/busybox insmod $m"; done
		cat <<'EOF'
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do /bin/busybox usleep 20000; i=$((i+1)); done
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; exit 1; }
/bin/busybox umount /dev
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot /sbin/init
EOF
	} >"$ird/init"
	chmod 0755 "$ird/init"
	chroot "$r" sh -c 'cd /tmp/initrd && find . | sort | cpio -o -H newc -R 0:0 --quiet > /boot/initrd-vm.img'
	rm -rf "$ird" "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*
}

essential() {
	mkdir -p "$1/etc/initramfs-tools/conf.d"
	echo MODULES=list >"$1/etc/initramfs-tools/conf.d/vm.conf"
	printf 'virtio_pci\nvirtio_blk\next4\n' >>"$1/etc/initramfs-tools/modules"
}

case ${1:-} in
--customize) customize "$2"; exit ;;
--essential) essential "$2"; exit ;;
esac

stamp=$(sha256sum "$SELF" | cut -d' ' -f1)
if [ "${1:-}" != --force ] && [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
	echo "$OUT"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "hack/vm/image.sh: the guest image in $OUT is missing or older than this script; build it as root: sudo $SELF" >&2
	exit 1
fi

missing=()
for p in qemu-system-x86 mmdebstrap e2fsprogs xz-utils; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "hack/vm/image.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
work=$(mktemp -d "${OUT%/*}/build.XXXXXX" 2>/dev/null || { mkdir -p "${OUT%/*}" && mktemp -d "${OUT%/*}/build.XXXXXX"; })
trap 'rm -rf "$work"' EXIT
echo "hack/vm/image.sh: building the guest image in $work (about a minute)" >&2
mmdebstrap --mode=root --variant=minbase --quiet \
	--include=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,udev,kmod,linux-image-amd64,uidmap,procps,iproute2,fuse3,fuse-overlayfs,slirp4netns,busybox-static,cpio,crun,runc,util-linux,containerd,containernetworking-plugins \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--essential-hook="\"$SELF\" --essential \"\$1\"" \
	--customize-hook="\"$SELF\" --customize \"\$1\"" \
	bookworm "$work/root" "$sources" </dev/null
mkfs.ext4 -q -F -L vmroot -d "$work/root" "$work/rootfs.img" 2G
cp "$(ls "$work"/root/boot/vmlinuz-* | head -1)" "$work/vmlinuz"
cp "$work/root/boot/initrd-vm.img" "$work/initrd-vm.img"
mkdir -p "$OUT"
for f in rootfs.img vmlinuz initrd-vm.img; do
	mv -f "$work/$f" "$OUT/$f"
	chmod 0644 "$OUT/$f"
done
echo "$stamp" >"$OUT/stamp"
chmod 0755 "$OUT" "${OUT%/*}"
echo "$OUT"
