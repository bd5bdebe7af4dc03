#!/bin/bash
# SPDX-License-Identifier: MIT
# vfiobox lab-vu: a real VMM (QEMU >= 10.1, vfio-user-pci) for `vfiobox serve` (test/lab-vu/README.md).
# setup.sh [--env]
#
# Prepares, once, in ${VFIOBOX_CACHE:-~/.cache/vfiobox}/lab-vu/ (the host's packages stay untouched):
#   sid-root/                 a minimal Debian sid chroot (debootstrap) with qemu-system-x86 in it
#   kernel/<kver>/            sid's kernel: vmlinuz and the guest modules (uio, uio_pci_generic)
#   kernel/<kver>/initrd-<hash>.cpio.gz   busybox initramfs + guest/init.sh + guest/vu-check.c
#                             (static, built here with gcc -static); <hash> covers every input
#   versions                  the QEMU and kernel package versions in use
# Warm runs take well under a second: every stage has a stamp, nothing asks apt again unless
# VFIOBOX_LAB_VU_REFRESH=1 (which re-runs apt-get update + upgrade in the chroot and re-resolves
# the kernel). One preparer at a time (flock); the others wait and then find it ready.
#
# Output: without --env, the versions (stdout). With --env, shell assignments for boot.sh:
#   LVU_ROOT LVU_KERNEL LVU_INITRD LVU_QEMU_VERSION LVU_KERNEL_VERSION
# Progress goes to stderr. Needs root (debootstrap, chroot). Network: the Debian mirror only.
# Environment: VFIOBOX_CACHE, VFIOBOX_LAB_VU_MIRROR (default: the host's deb.debian.org URI),
#   VFIOBOX_LAB_VU_REFRESH=1.
# Exit status: 0 ready; 125 the rig could not be prepared.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LVC=${VFIOBOX_CACHE:-$HOME/.cache/vfiobox}/lab-vu
R=$LVC/sid-root
# Bump when the layout of a stage changes, so old caches are rebuilt rather than misread.
CHROOT_STAMP=$R/.vfiobox-lab-vu-v1
GUEST_MODULES="uio uio_pci_generic"

log() { echo "[lab-vu] $*" >&2; }
die() { echo "[lab-vu] ERROR: $*" >&2; exit 125; }

# Runs "$@" inside the chroot, in a private mount namespace: /proc and /dev are mounted only
# for this command and vanish with it (no leaked mounts under the cache, no umount traps).
in_chroot() {
  unshare --mount --propagation private -- /bin/bash -c '
    set -e; R=$1; shift
    mount -t proc proc "$R/proc"
    mount --rbind /dev "$R/dev"
    exec chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"' in_chroot "$R" "$@" </dev/null
}

need_host_tools() {
  local missing=() p
  for p in debootstrap busybox-static cpio xz-utils zstd gcc libc6-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing on the host (bookworm): ${missing[*]}"
  apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" </dev/null >&2 || die "apt-get install ${missing[*]} failed"
}

mirror() {
  if [ -n "${VFIOBOX_LAB_VU_MIRROR:-}" ]; then echo "$VFIOBOX_LAB_VU_MIRROR"; return; fi
  local m
  m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

# Refuses to delete a tree that still has something mounted in it.
safe_rm_tree() {
  if awk -v p="$1/" 'index($2 "/", p) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    die "$1 has mounts under it; unmount them first"
  fi
  rm -rf "$1"
}

# Stage 1: the sid chroot with QEMU.
build_chroot() {
  local t0=$SECONDS m
  m=$(mirror)
  if [ ! -x "$R/usr/bin/apt-get" ] || [ -d "$R/debootstrap" ]; then
    safe_rm_tree "$R.tmp"
    log "debootstrap sid (minbase) from $m into $R (about a minute)"
    unshare --mount --propagation private -- debootstrap --variant=minbase \
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg sid "$R.tmp" "$m" \
      >"$LVC/debootstrap.log" 2>&1 </dev/null \
      || { tail -20 "$LVC/debootstrap.log" >&2; die "debootstrap failed (log: $LVC/debootstrap.log)"; }
    safe_rm_tree "$R"
    mv "$R.tmp" "$R"
    log "debootstrap done in $((SECONDS - t0))s"
  fi
  # The mirror may serve a frozen snapshot whose Release files are past Valid-Until.
  printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
    >"$R/etc/apt/apt.conf.d/99vfiobox-no-valid-until"
  printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
  chmod +x "$R/usr/sbin/policy-rc.d"
  log "installing qemu-system-x86 in the chroot"
  in_chroot sh -c 'apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends qemu-system-x86 && apt-get clean' >"$LVC/apt-qemu.log" 2>&1 \
    || { tail -20 "$LVC/apt-qemu.log" >&2; die "qemu-system-x86 install failed (log: $LVC/apt-qemu.log)"; }
  in_chroot qemu-system-x86_64 -device vfio-user-pci,help >"$LVC/vfio-user-pci.help" 2>&1 \
    || { cat "$LVC/vfio-user-pci.help" >&2; die "this QEMU has no vfio-user-pci device"; }
  in_chroot dpkg-query -W -f='${Version}' qemu-system-x86 >"$CHROOT_STAMP"
  log "chroot ready in $((SECONDS - t0))s: qemu-system-x86 $(cat "$CHROOT_STAMP")"
}

refresh_chroot() {
  log "refresh: apt-get update + upgrade in the chroot"
  in_chroot sh -c 'apt-get update -qq && apt-get -y -qq upgrade && apt-get clean' >&2 \
    || die "chroot refresh failed"
  in_chroot dpkg-query -W -f='${Version}' qemu-system-x86 >"$CHROOT_STAMP"
  rm -f "$LVC/kernel/current"
}

# Stage 2: sid's kernel. linux-image-amd64 -> linux-image-<kver> is a meta package in sid; the
# image and modules are in linux-binary-<kver> and linux-modules-<kver>.
build_kernel() {
  local kver=$1 k=$LVC/kernel/$1 t0=$SECONDS
  log "downloading sid kernel $kver (linux-binary + linux-modules)"
  local dl=$R/tmp/vfiobox-kpkg
  rm -rf "$dl" "$k.tmp"
  mkdir -p "$dl" "$k.tmp/modules"
  in_chroot sh -c "cd /tmp/vfiobox-kpkg && apt-get download -q linux-binary-$kver linux-modules-$kver" \
    >"$LVC/apt-kernel.log" 2>&1 \
    || { tail -20 "$LVC/apt-kernel.log" >&2; die "kernel download failed (log: $LVC/apt-kernel.log)"; }
  local x=$k.tmp/x d
  mkdir -p "$x"
  for d in "$dl"/*.deb; do dpkg-deb -x "$d" "$x"; done
  local img
  img=$(find "$x" \( -name vmlinuz -o -name "vmlinuz-$kver" \) -type f | head -1)
  [ -n "$img" ] || die "no vmlinuz in linux-binary-$kver"
  cp "$img" "$k.tmp/vmlinuz"
  local mod f
  for mod in $GUEST_MODULES; do
    f=$(find "$x" -path "*/kernel/drivers/*" -name "$mod.ko*" | head -1)
    [ -n "$f" ] || die "module $mod not in linux-modules-$kver"
    case "$f" in
      *.xz) xz -dc "$f" >"$k.tmp/modules/$mod.ko" ;;
      *.zst) zstd -qdc "$f" >"$k.tmp/modules/$mod.ko" ;;
      *.gz) gzip -dc "$f" >"$k.tmp/modules/$mod.ko" ;;
      *) cp "$f" "$k.tmp/modules/$mod.ko" ;;
    esac
  done
  # The package versions, for the record (linux-binary-<kver>_<version>_amd64.deb).
  basename -a "$dl"/*.deb | sed 's/_amd64\.deb$//; s/_/ /' >"$k.tmp/packages"
  rm -rf "$x" "$dl"
  rm -rf "$k"
  mv "$k.tmp" "$k"
  log "kernel $kver ready in $((SECONDS - t0))s"
}

pick_kernel() {
  local cur=$LVC/kernel/current kver
  if [ -s "$cur" ] && [ -f "$LVC/kernel/$(cat "$cur")/vmlinuz" ]; then
    cat "$cur"
    return
  fi
  kver=$(in_chroot apt-cache depends linux-image-amd64 2>/dev/null \
    | sed -n 's/.*Depends: linux-image-\([^ ]*\)$/\1/p' | grep -v -- '-unsigned$' | head -1)
  [ -n "$kver" ] || die "cannot resolve linux-image-amd64 in the chroot"
  [ -f "$LVC/kernel/$kver/vmlinuz" ] || build_kernel "$kver"
  echo "$kver" >"$cur"
  echo "$kver"
}

# Stage 3: the initramfs. Its name carries a hash of every input, so an edited init or check
# program gets a fresh image while concurrent runs of the old one keep theirs.
initrd_inputs() {
  local k=$1
  sha256sum "$HERE/guest/init.sh" "$HERE"/guest/*.c "$HERE"/guest/*.h /bin/busybox "$k"/modules/*.ko | awk '{print $1}'
}

build_initramfs() {
  local k=$1 out=$2 t0=$SECONDS
  local w
  w=$(mktemp -d "$LVC/initrd.XXXXXX")
  mkdir -p "$w"/{bin,dev,proc,sys,tmp,lib/modules}
  cp /bin/busybox "$w/bin/busybox"
  ln -s busybox "$w/bin/sh"
  # -static: the initramfs has no libc. snprintf truncation is the intended bound on sysfs names.
  gcc -static -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation -o "$w/bin/vu-check" \
    "$HERE"/guest/*.c 2>"$w/gcc.log" || { cat "$w/gcc.log" >&2; rm -rf "$w"; die "guest program build failed"; }
  rm -f "$w/gcc.log"
  cp "$k"/modules/*.ko "$w/lib/modules/"
  echo "$GUEST_MODULES" >"$w/lib/modules/order"
  install -m 0755 "$HERE/guest/init.sh" "$w/init"
  (cd "$w" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out.tmp"
  mv "$out.tmp" "$out"
  # Older images go: a VM that is booting one has it open already (QEMU reads it at start).
  find "$k" -maxdepth 1 -name 'initrd-*.cpio.gz' ! -name "$(basename "$out")" -delete
  rm -rf "$w"
  log "initramfs built in $((SECONDS - t0))s: $(basename "$out")"
}

prepare() {
  mkdir -p "$LVC/kernel"
  local kver k hash initrd
  if [ -f "$CHROOT_STAMP" ] && [ "${VFIOBOX_LAB_VU_REFRESH:-0}" != 1 ] && [ -s "$LVC/kernel/current" ]; then
    kver=$(cat "$LVC/kernel/current")
    k=$LVC/kernel/$kver
    hash=$(initrd_inputs "$k" 2>/dev/null | sha256sum | cut -c1-16)
    initrd=$k/initrd-$hash.cpio.gz
    if [ -f "$initrd" ]; then
      emit "$kver" "$initrd"
      return
    fi
  fi
  exec 8>"$LVC/.lock"
  if ! flock -n 8; then
    log "waiting for another lab-vu setup to finish"
    flock 8
  fi
  need_host_tools
  [ -f "$CHROOT_STAMP" ] || build_chroot
  [ "${VFIOBOX_LAB_VU_REFRESH:-0}" = 1 ] && refresh_chroot
  kver=$(pick_kernel)
  k=$LVC/kernel/$kver
  hash=$(initrd_inputs "$k" | sha256sum | cut -c1-16)
  initrd=$k/initrd-$hash.cpio.gz
  [ -f "$initrd" ] || build_initramfs "$k" "$initrd"
  {
    echo "qemu-system-x86 $(cat "$CHROOT_STAMP")"
    echo "kernel $kver"
    cat "$k/packages" 2>/dev/null || true
  } >"$LVC/versions"
  flock -u 8
  emit "$kver" "$initrd"
}

emit() {
  local kver=$1 initrd=$2
  if [ "$ENV_OUT" = 1 ]; then
    printf 'LVU_ROOT=%q\nLVU_KERNEL=%q\nLVU_INITRD=%q\nLVU_QEMU_VERSION=%q\nLVU_KERNEL_VERSION=%q\n' \
      "$R" "$LVC/kernel/$kver/vmlinuz" "$initrd" "$(cat "$CHROOT_STAMP")" "$kver"
  else
    cat "$LVC/versions"
  fi
}

ENV_OUT=0
case "${1:-}" in
  --env) ENV_OUT=1 ;;
  '') ;;
  -h | --help) sed -n '3,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument $1 (try --help)" ;;
esac
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount namespaces)"
prepare
