#!/bin/bash
# vfiobox lab: owned by this repository (test/lab/README.md).
# run-in-guest.sh CMD [ARGS...]
#
# Boots Debian's linux-6.12 kernel under QEMU TCG (q35 + intel-iommu + QEMU
# "edu" devices), with the host's / visible read-only (tmpfs overlay on top,
# so writes are allowed and thrown away), binds the edu devices (and a
# pci-testdev) to vfio-pci, runs CMD ARGS... as root in the host's current
# directory, and exits with CMD's exit code. CMD's stdout/stderr arrive on
# this script's stdout/stderr (pipes in the guest: isatty() is false).
#
# Real kernel VFIO in every uAPI mode: Debian's vfio modules are built
# without IOMMUFD / VFIO_DEVICE_CDEV / VFIO_NOIOMMU, so this script rebuilds
# Debian's own vfio + iommufd sources (same package version as the kernel)
# as out-of-tree modules with those options on. Needs root; everything is
# cached in $VFIOLAB_CACHE (default ~/.cache/vfiobox/lab; first run ~1 min).
#
# Environment:
#   VFIOLAB_MODE=iommu      (default) intel-iommu,intremap=on: /dev/vfio/vfio,
#                           /dev/vfio/<group>, /dev/vfio/devices/vfioN, /dev/iommu
#   VFIOLAB_MODE=noiommu    no vIOMMU, vfio.enable_unsafe_noiommu_mode=1:
#                           /dev/vfio/vfio + /dev/vfio/noiommu-<group> only
#                           (Linux 6.12 has no cdev for no-IOMMU devices)
#   VFIOLAB_VFIO=rebuilt    (default) the rebuilt vfio/iommufd modules
#   VFIOLAB_VFIO=stock      Debian's unmodified vfio modules: legacy mode only
#   VFIOLAB_MEM=2G  VFIOLAB_SMP=2  VFIOLAB_TIMEOUT=600 (seconds, whole VM)
#   VFIOLAB_BIND="1234:11e8,1b36:0005"  vendor:device ids bound to vfio-pci
#   VFIOLAB_DEBUG=1         kernel log + init trace on stderr
#   VFIOLAB_KEEP_OUT=1      keep the per-run dir (console.log, dmesg.txt, timing, env)
#   VFIOLAB_TIMING=1        print a timing line on stderr at the end (off by
#                           default so CMD's last line stays the last line)
#   VFIOLAB_KPKGVER=6.12.117-1~deb12u1  pin the Debian linux-6.12 package version
#                           (default: the last one prepared, else apt's candidate
#                           of linux-source-6.12; VFIOLAB_REFRESH=1 re-asks apt)
#   VFIOLAB_QEMU=/path/to/qemu-system-x86_64  (default: the one in PATH)
#   VFIOLAB_QEMU_EXTRA="..."  extra QEMU arguments
#   VFIOLAB_PASSENV="A B"   extra host env vars passed to CMD (PATH, HOME, LANG,
#                           LC_ALL, TERM, USER, LOGNAME always are)
# Inside the guest CMD also gets VFIOLAB_MODE, VFIOLAB_VFIO, VFIOLAB_NDEV,
# VFIOLAB_DEVICES and VFIOLAB_DEV<i>_{BDF,ID,DRIVER,GROUP,CDEV}
# (the same lines are in /run/vfiolab/env).
# Guest PCI layout: 00:04.0 edu (root bus, no reset method), 00:05.0 PCIe root
# port with 01:00.0 edu behind it (bus reset => VFIO_DEVICE_RESET), 00:06.0
# pci-testdev; each in its own IOMMU group.
# Exit status: CMD's own; 125 = rig failure (no exit code came back).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${VFIOLAB_CACHE:-${VFIOBOX_CACHE:-$HOME/.cache/vfiobox}/lab}
MODE=${VFIOLAB_MODE:-iommu}
MEM=${VFIOLAB_MEM:-2G}
SMP=${VFIOLAB_SMP:-2}
TIMEOUT=${VFIOLAB_TIMEOUT:-600}
BIND=${VFIOLAB_BIND:-1234:11e8,1b36:0005}
DEBUG=${VFIOLAB_DEBUG:-0}

log() { echo "[vfiolab] $*" >&2; }
die() { echo "[vfiolab] ERROR: $*" >&2; exit 125; }

need_tools() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  # busybox-static (not "busybox", which is dynamically linked) goes into the initramfs
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v modprobe >/dev/null && command -v depmod >/dev/null || missing+=(kmod)
  command -v xz >/dev/null || missing+=(xz-utils)
  command -v gcc-12 >/dev/null || missing+=(gcc-12)
  command -v make >/dev/null || missing+=(make)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing (bookworm): ${missing[*]}"
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
  fi
}

# The newest linux-6.12 version whose source AND image packages are both in apt. The mirror
# publishes linux-source and the -unsigned image before the signed image (seen 2026-12-03:
# 6.12.118 had source and -unsigned but no signed linux-image yet), so the image is taken from
# the -unsigned package, which holds the same kernel and module tree.
newest_complete_kernel() {
  local v abi
  for v in $(apt-cache madison linux-source-6.12 2>/dev/null | awk '{print $3}'); do
    abi="${v%%-*}+deb12"
    if apt-cache madison "linux-image-$abi-amd64-unsigned" 2>/dev/null | awk '{print $3}' | grep -qxF "$v"; then
      echo "$v"
      return
    fi
  done
}

pick_kernel() {
  KPKGVER=${VFIOLAB_KPKGVER:-}
  # Reuse the last prepared kernel unless asked to re-resolve (apt-cache is slow).
  if [ -z "$KPKGVER" ] && [ "${VFIOLAB_REFRESH:-0}" != 1 ] && [ -s "$CACHE/current" ]; then
    KPKGVER=$(cat "$CACHE/current")
  fi
  if [ -z "$KPKGVER" ]; then
    KPKGVER=$(newest_complete_kernel)
    if [ -z "$KPKGVER" ]; then
      apt-get update -qq >&2 || true
      KPKGVER=$(newest_complete_kernel)
    fi
  fi
  [ -n "$KPKGVER" ] && [ "$KPKGVER" != "(none)" ] || die "no linux-source-6.12 in apt (run apt-get update?)"
  # 6.12.117-1~deb12u1 -> ABI 6.12.117+deb12 ; 6.12.95-1~bpo12+1 -> 6.12.95+deb12
  KABI="${KPKGVER%%-*}+deb12"
  KVER="$KABI-amd64"
}

# Build (once) vmlinuz + initramfs into $CACHE/$KVER/.
prepare() {
  pick_kernel
  K=$CACHE/$KVER
  STAMP=$K/ready-kmod-v2
  if [ -f "$STAMP" ] && [ -f "$K/vmlinuz" ] && [ -f "$K/initramfs.cpio.gz" ] \
     && [ "$K/initramfs.cpio.gz" -nt "$HERE/guest-init.sh" ]; then
    return 0
  fi
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"
  flock 8   # one preparer at a time; the others wait, then find it ready
  if [ -f "$STAMP" ] && [ -f "$K/initramfs.cpio.gz" ] && [ "$K/initramfs.cpio.gz" -nt "$HERE/guest-init.sh" ]; then
    flock -u 8; return 0
  fi
  need_tools
  [ -f "$STAMP" ] || build_kernel_side
  build_initramfs
  echo "$KPKGVER" > "$CACHE/current"
  flock -u 8
}

# Stage 1: download the Debian packages, build the vfio/iommufd modules and
# a module tree with depmod data.
build_kernel_side() {
  log "preparing guest kernel $KVER (Debian linux-6.12 $KPKGVER) in $K"
  mkdir -p "$K/debs"
  local pkgs=(linux-image-$KVER-unsigned=$KPKGVER linux-headers-$KVER=$KPKGVER
              linux-headers-$KABI-common=$KPKGVER linux-kbuild-$KABI=$KPKGVER
              linux-source-6.12=$KPKGVER)
  if [ "$(ls "$K"/debs/*.deb 2>/dev/null | wc -l)" -lt 5 ]; then
    if ! (cd "$K/debs" && apt-get download "${pkgs[@]}" >&2); then
      log "apt-get download failed; apt-get update and one retry"
      apt-get update -qq >&2 || true
      (cd "$K/debs" && apt-get download "${pkgs[@]}" >&2) || die "apt-get download failed: ${pkgs[*]}"
    fi
  fi
  rm -rf "$K/root" "$K/src" "$K/kmod" "$K/initrd"
  mkdir -p "$K/root" "$K/src"
  for d in "$K"/debs/linux-image-*.deb "$K"/debs/linux-headers-*.deb "$K"/debs/linux-kbuild-*.deb; do
    dpkg-deb -x "$d" "$K/root"
  done
  local H=$K/root/usr/src/linux-headers-$KVER
  # The headers' Makefile includes the -common tree by absolute /usr/src path.
  sed -i "s#^include /usr/src/#include $K/root/usr/src/#" "$H/Makefile"
  dpkg-deb --fsys-tarfile "$K"/debs/linux-source-6.12_*.deb \
    | tar -xO --wildcards './usr/src/linux-source-6.12.tar.xz' \
    | tar -xJ -C "$K/src" linux-source-6.12/drivers/vfio linux-source-6.12/drivers/iommu/iommufd \
        linux-source-6.12/drivers/iommu/iommu-priv.h linux-source-6.12/lib/interval_tree.c
  local S=$K/src/linux-source-6.12 M=$K/kmod
  mkdir -p $M/vfio/pci $M/iommu/iommufd
  cp $S/drivers/vfio/*.c $S/drivers/vfio/vfio.h $M/vfio/
  cp $S/drivers/vfio/pci/*.c $S/drivers/vfio/pci/*.h $M/vfio/pci/
  cp $S/drivers/iommu/iommu-priv.h $M/iommu/
  cp $S/drivers/iommu/iommufd/*.c $S/drivers/iommu/iommufd/*.h $M/iommu/iommufd/
  # Debian builds without CONFIG_INTERVAL_TREE_SPAN_ITER (only iommufd needs it):
  # link a private copy of those functions into iommufd.ko.
  { echo '// SPDX-License-Identifier: GPL-2.0-only'
    echo '/* interval_tree_span_iter_*() from lib/interval_tree.c, private copy for iommufd.ko */'
    echo '#include <linux/interval_tree.h>'
    echo '#include <linux/compiler.h>'
    sed -n '/^#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER/,$p' $S/lib/interval_tree.c | grep -v '^EXPORT_SYMBOL'
  } > $M/iommu/iommufd/interval_tree_span.c
  cp "$HERE/kmod.Kbuild" $M/Kbuild
  log "building vfio/iommufd modules (IOMMUFD=m VFIO_DEVICE_CDEV=y VFIO_NOIOMMU=y)"
  make -C "$H" M=$M -j"$(nproc)" CC=gcc-12 CONFIG_DEBUG_INFO_BTF_MODULES= modules > $M/build.log 2>&1 \
    || { tail -30 $M/build.log >&2; die "module build failed (log: $M/build.log)"; }

  # Module tree for depmod: stock modules + ours in place of the stock vfio ones.
  local MR=$K/modroot/lib/modules/$KVER
  rm -rf "$K/modroot"; mkdir -p "$MR"
  cp -a "$K/root/lib/modules/$KVER/kernel" "$K/root/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$MR/"
  # Keep Debian's unmodified vfio modules too (VFIOLAB_VFIO=stock: legacy mode only).
  local f
  rm -rf "$K/stock"
  for f in kernel/drivers/vfio/vfio.ko.xz kernel/drivers/vfio/vfio_iommu_type1.ko.xz \
           kernel/drivers/vfio/pci/vfio-pci-core.ko.xz kernel/drivers/vfio/pci/vfio-pci.ko.xz; do
    mkdir -p "$K/stock/$(dirname $f)"; mv "$MR/$f" "$K/stock/$f"
  done
  mkdir -p "$MR/kernel/drivers/iommu/iommufd"
  cp $M/vfio.ko $M/vfio_iommu_type1.ko "$MR/kernel/drivers/vfio/"
  cp $M/vfio-pci.ko $M/vfio-pci-core.ko "$MR/kernel/drivers/vfio/pci/"
  cp $M/iommufd.ko "$MR/kernel/drivers/iommu/iommufd/"
  depmod -b "$K/modroot" "$KVER"
  cp "$K/root/boot/vmlinuz-$KVER" "$K/vmlinuz"
  cp "$K/root/boot/config-$KVER" "$K/config"
  # Only modroot/ (for the initramfs), stock/ and kmod/ (our .ko + build log) are kept.
  rm -rf "$K/root" "$K/src" "$K/debs"
  echo "$KPKGVER" > "$STAMP"
}

# Stage 2: busybox initramfs with /init and the modules it loads.
build_initramfs() {
  local MR=$K/modroot/lib/modules/$KVER
  local R=$K/initrd
  rm -rf "$R"
  mkdir -p $R/bin $R/dev $R/proc $R/sys $R/tmp $R/lib/modules
  cp /bin/busybox $R/bin/busybox
  ln -sf busybox $R/bin/sh
  cp "$HERE/guest-init.sh" $R/init; chmod 755 $R/init
  mknod -m 600 $R/dev/console c 5 1
  mknod -m 666 $R/dev/null c 1 3
  : > $R/modules.list
  local want="virtio_pci 9pnet_virtio 9p overlay iommufd vfio vfio_iommu_type1 vfio-pci"
  local seen=" "
  for mod in $want; do
    while read -r kind path _; do
      [ "$kind" = insmod ] || continue
      case "$seen" in *" $path "*) continue ;; esac
      seen="$seen$path "
      local rel=${path#$MR/}; rel=${rel%.xz}
      mkdir -p "$R/lib/modules/$(dirname "$rel")"
      case "$path" in
        *.xz) xz -dc "$path" > "$R/lib/modules/$rel" ;;
        *) cp "$path" "$R/lib/modules/$rel" ;;
      esac
      echo "$rel" >> $R/modules.list
    done < <(modprobe -d "$K/modroot" -S "$KVER" --show-depends "$mod")
  done
  # Same list with Debian's own vfio modules (and no iommufd) for VFIOLAB_VFIO=stock.
  local rel
  while read -r rel; do
    case "$rel" in
      */iommufd.ko) ;;
      kernel/drivers/vfio/*)
        mkdir -p "$R/lib/modules/stock/$(dirname "$rel")"
        xz -dc "$K/stock/$rel.xz" > "$R/lib/modules/stock/$rel"
        echo "stock/$rel" ;;
      *) echo "$rel" ;;
    esac
  done < $R/modules.list > $R/modules-stock.list
  (cd $R && find . | cpio -o -H newc --quiet) | gzip -1 > "$K/initramfs.cpio.gz.tmp"
  mv "$K/initramfs.cpio.gz.tmp" "$K/initramfs.cpio.gz"
  log "initramfs ready: $(tr '\n' ' ' < $R/modules.list)"
}

# POSIX-sh quoting ('...' with ' as '\''): cmd.sh runs under the host's
# /bin/sh (dash), which has no $'...' as bash's printf %q can produce.
sq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
shell_quote() { local out="" a; for a in "$@"; do out+=" $(sq "$a")"; done; echo "${out# }"; }

main() {
  [ $# -ge 1 ] || { sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
  case "$MODE" in iommu|noiommu) ;; *) die "VFIOLAB_MODE must be iommu or noiommu";; esac
  local vfio=${VFIOLAB_VFIO:-rebuilt}
  case "$vfio" in rebuilt) ;; stock) [ "$MODE" = iommu ] || die "VFIOLAB_VFIO=stock has no no-IOMMU mode (Debian: # CONFIG_VFIO_NOIOMMU is not set)";;
    *) die "VFIOLAB_VFIO must be rebuilt or stock";; esac
  local t0; t0=$(date +%s.%N)
  prepare
  command -v qemu-system-x86_64 >/dev/null || need_tools
  local t1; t1=$(date +%s.%N)

  OUT=$(mktemp -d /tmp/vfiolab-run.XXXXXX)
  trap '[ "${VFIOLAB_KEEP_OUT:-0}" = 1 ] && log "run dir kept: $OUT" || rm -rf "$OUT"' EXIT
  {
    echo '#!/bin/sh'
    echo '# written by run-in-guest.sh'
    local v
    for v in PATH HOME LANG LC_ALL TERM USER LOGNAME ${VFIOLAB_PASSENV:-}; do
      [ -n "${!v+x}" ] && echo "export $v=$(sq "${!v}")"
    done
    echo 'set -a; . /run/vfiolab/env; set +a'
    echo "cd $(sq "$PWD") 2>/dev/null || cd /"
    echo "exec $(shell_quote "$@")"
  } > "$OUT/cmd.sh"

  local append="console=ttyS0 panic=-1 mitigations=off vfiolab.mode=$MODE vfiolab.vfio=$vfio vfiolab.bind=$BIND"
  # ttyS0: kernel console (+ init trace) -> $OUT/console.log, or the host's
  # stderr with VFIOLAB_DEBUG=1; ttyS1: CMD's stdout; ttyS2: CMD's stderr.
  # QEMU writes into FIFOs drained by cat processes that inherited our fds:
  # re-opening /proc/self/fd/N instead would clobber output when N is a regular
  # file (separate file offsets).
  local con=file,id=con,path="$OUT/console.log"
  if [ "$DEBUG" = 1 ]; then
    append+=" loglevel=7 vfiolab.debug=1"
    con=file,id=con,path="$OUT/console.fifo"
  else
    append+=" quiet loglevel=3"
  fi
  local qargs=(-nodefaults -no-user-config -machine q35 -accel tcg,thread=multi -cpu max
               -smp "$SMP" -m "$MEM" -display none -no-reboot
               -kernel "$K/vmlinuz" -initrd "$K/initramfs.cpio.gz")
  if [ "$MODE" = iommu ]; then
    append+=" intel_iommu=on"
    # intel-iommu must come before the PCI devices it translates for.
    qargs+=(-device intel-iommu,intremap=on)
  else
    append+=" intel_iommu=off"
  fi
  qargs+=(-append "$append"
    # dev 0: edu on the root complex (own IOMMU group, no reset method)
    -device edu,addr=04.0,dma_mask=0xffffffffffffffff
    # dev 1: edu behind a PCIe root port (bus reset => VFIO_DEVICE_RESET works)
    -device pcie-root-port,id=rp1,chassis=1,slot=1,addr=05.0
    -device edu,bus=rp1,addr=00.0,dma_mask=0xffffffffffffffff
    # dev 2: a different device: pci-testdev (MMIO + I/O BARs, no IRQ)
    -device pci-testdev,addr=06.0
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,addr=08.0
    -fsdev local,id=vout,path="$OUT",security_model=none
    -device virtio-9p-pci,fsdev=vout,mount_tag=vfiolab_out,addr=09.0
    -chardev "$con" -serial chardev:con
    -chardev file,id=cout,path="$OUT/stdout.fifo" -serial chardev:cout
    -chardev file,id=cerr,path="$OUT/stderr.fifo" -serial chardev:cerr)
  # shellcheck disable=SC2206
  [ -n "${VFIOLAB_QEMU_EXTRA:-}" ] && qargs+=(${VFIOLAB_QEMU_EXTRA})

  local qrc attempt=1 cat_out cat_err cat_con f
  while :; do
    mkfifo "$OUT/stdout.fifo" "$OUT/stderr.fifo"
    cat "$OUT/stdout.fifo" & cat_out=$!
    cat "$OUT/stderr.fifo" >&2 & cat_err=$!
    cat_con=""
    if [ "$DEBUG" = 1 ]; then
      mkfifo "$OUT/console.fifo"
      cat "$OUT/console.fifo" >&2 & cat_con=$!
    fi
    qrc=0
    timeout --foreground -k 5 "$TIMEOUT" "${VFIOLAB_QEMU:-qemu-system-x86_64}" "${qargs[@]}" < /dev/null || qrc=$?
    # If QEMU died before opening a FIFO, its cat would wait forever: opening it
    # read-write never blocks, and closing it again gives the cat its EOF.
    for f in stdout stderr console; do
      if [ -p "$OUT/$f.fifo" ]; then exec 9<>"$OUT/$f.fifo"; exec 9>&-; fi
    done
    wait $cat_out $cat_err $cat_con 2>/dev/null || true
    # The guest kernel died while booting, before init ran CMD (no timing file, QEMU exited
    # by itself): the rig's failure, not CMD's. Seen in 2 of 6 CI runs on 2026-12-04: an int3
    # oops in sched_clock_cpu from text patching under multi-threaded TCG, at 1 to 2 s of
    # uptime. Boot again, loudly, up to twice; CMD never runs twice, and a third failure ends
    # the run as before.
    if [ $attempt -lt 3 ] && [ $qrc != 124 ] && [ ! -f "$OUT/timing" ] && [ ! -f "$OUT/rc" ] &&
       [ ! -f "$OUT/init-error" ]; then
      log "the guest did not get to run the command (qemu exit $qrc); what its kernel said:"
      [ -s "$OUT/console.log" ] &&
        { grep -m4 -E 'Oops|BUG:|RIP:|panic' "$OUT/console.log" || tail -4 "$OUT/console.log"; } >&2
      log "booting the guest again (boot $((attempt + 1)) of 3)"
      rm -f "$OUT"/*.fifo "$OUT/console.log"
      attempt=$((attempt + 1))
      continue
    fi
    break
  done
  local t2; t2=$(date +%s.%N)
  if [ "${VFIOLAB_TIMING:-0}" = 1 ] && [ -f "$OUT/timing" ]; then
    log "$(awk -v t0="$t0" -v t1="$t1" -v t2="$t2" '
      { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { printf "timing: prepare %.2fs, VM total %.2fs (guest uptime: init %.2fs, modules loaded %.2fs, mounts %.2fs, devices bound %.2fs",
            t1 - t0, t2 - t1, v["init"], v["modules"], v["mounts"], v["bind"]
            if ("cmd_end" in v) printf ", cmd %.2fs-%.2fs = %.2fs)", v["cmd_start"], v["cmd_end"], v["cmd_end"] - v["cmd_start"]
            else printf ", cmd did not finish)" }' "$OUT/timing")"
  fi
  if [ -f "$OUT/init-error" ]; then
    log "guest init failed: $(cat "$OUT/init-error")"; [ -f "$OUT/dmesg.txt" ] && tail -40 "$OUT/dmesg.txt" >&2
    exit 125
  fi
  if [ ! -f "$OUT/rc" ]; then
    [ $qrc = 124 ] && log "timed out after ${TIMEOUT}s"
    [ -s "$OUT/console.log" ] && { log "last kernel console lines:"; tail -30 "$OUT/console.log" >&2; }
    die "no exit code came back from the guest (qemu exit $qrc)"
  fi
  exit "$(cat "$OUT/rc")"
}

main "$@"
