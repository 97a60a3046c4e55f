#!/bin/sh
# /init of the dax-harness guest initramfs (busybox sh). Mounts what the tests need, loads
# the modules listed in /etc/dax-harness/modules in order, brings up the network and sshd.
# Everything it says goes to /dev/kmsg so it lands in dmesg and on the serial console.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Debian's kernel has no DEVTMPFS_MOUNT: mount it ourselves.
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run /mnt
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
exec 0</dev/null >/dev/kmsg 2>&1
say() { echo "dax-harness-init: $*"; }
say "start $(cut -d' ' -f1 /proc/uptime)"
# Requests for modules not preloaded go through busybox modprobe and modules.dep.
echo /sbin/modprobe > /proc/sys/kernel/modprobe
# modprobe would give a module its "<module>.<param>=<value>" words from the kernel command line;
# insmod does not, so they are added here (a run's --append reaches modular drivers too).
cmdline=$(cat /proc/cmdline)
cmdline_params() {
  for w in $cmdline; do
    case "$w" in "$1".*=*) printf ' %s' "${w#"$1".}" ;; esac
  done
}
while read -r path params; do
  [ -n "$path" ] || continue
  name=${path##*/}
  name=$(echo "${name%%.ko*}" | tr - _)
  # shellcheck disable=SC2086
  insmod "$path" $params $(cmdline_params "$name") || say "insmod $path failed"
  say "loaded ${path##*/} $(cut -d' ' -f1 /proc/uptime)"
done < /etc/dax-harness/modules
say "modules $(cut -d' ' -f1 /proc/uptime)"
# Hung-task reports are evidence: report after 30 s instead of 120 s, and never panic on them.
echo 30 > /proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
echo 0 > /proc/sys/kernel/hung_task_panic 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq
ip link set lo up
for dev in /sys/class/net/*; do
  n=${dev##*/}
  [ "$n" = lo ] && continue
  ip link set "$n" up
  # QEMU user networking: the guest is always 10.0.2.15, the gateway 10.0.2.2.
  ip addr add 10.0.2.15/24 dev "$n"
  ip route add default via 10.0.2.2
  break
done
chmod 700 /root /root/.ssh
chmod 600 /root/.ssh/authorized_keys /etc/dropbear/*
# -s: no passwords; -g: no root password login; -R is not used: the host key is given.
dropbear -s -g -r /etc/dropbear/dropbear_ed25519_host_key -p 22 -P /run/dropbear.pid
say "sshd $(cut -d' ' -f1 /proc/uptime)"
# A slow block device: every I/O completes after 2 s (timer mode), which holds an O_DIRECT
# page pin open long enough to observe it. Named nullb0 so the disk is /dev/nullb0 on
# kernels that name disks after the configfs item and on those that do not. Made in the background: powering it on blocks
# for the partition scan's delayed reads. Tests wait for /dev/nullb0.
# If it cannot be made, /run/slowdev.failed says so at once: the harness reports that as
# infrastructure trouble instead of waiting out its bound.
(
  mount -t configfs configfs /sys/kernel/config &&
  d=/sys/kernel/config/nullb/nullb0 && mkdir "$d" &&
  echo 1024 > "$d/size" && echo 4096 > "$d/blocksize" && echo 2 > "$d/irqmode" &&
  echo 2000000000 > "$d/completion_nsec" && echo 1 > "$d/power" &&
  say "slow null_blk ready $(cut -d' ' -f1 /proc/uptime)" ||
  { say "slow null_blk FAILED (no /sys/kernel/config/nullb: null_blk not loaded?)"; : > /run/slowdev.failed; }
) &
echo "dax-harness-init: ready" > /dev/console
# Keep PID 1 alive and reap orphans.
while :; do sleep 3600; done
