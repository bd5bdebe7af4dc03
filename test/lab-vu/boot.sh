#!/bin/bash
# SPDX-License-Identifier: MIT
# vfiobox lab-vu: boot a TCG guest whose PCI devices are vfio-user servers (test/lab-vu/README.md).
# boot.sh [options] [SOCKET...]
#
# Boots Debian sid's kernel under sid's QEMU (the chroot setup.sh prepares, run on demand) with
# one `vfio-user-pci` device per SOCKET (host paths of listening vfio-user UNIX sockets, e.g.
# from `vfiobox serve --socket`). Each socket's directory is bind-mounted into the chroot for
# this VM only, so any host path works. Device i sits at guest BDF 0000:00:1i.0 (i < 8).
# Guest RAM is a shared memfd, so QEMU's DMA_MAPs carry file descriptors. The guest's /init runs
# vu-check and prints one line per check, which this script prints on stdout:
#   VU <name> ok|fail <detail>
# Options:
#   --out DIR           write console.log (kernel console), results.log (raw results channel),
#                       qemu-trace.log (-trace 'vfio_user_*'), qemu.log (QEMU stderr) into DIR
#                       (default: a temp dir, removed at exit unless VFIOBOX_LAB_VU_KEEP_OUT=1)
#   --timeout S         hard limit for the whole VM (default 240; VFIOBOX_LAB_VU_TIMEOUT)
#   --guest-timeout S   bound for each wait inside the guest (default 20: vu.timeout=S)
#   --mem SIZE          guest RAM (default 512M)
#   --qemu-arg ARG      one extra QEMU argument (repeatable)
#   --sock-dir          print a host directory that the chroot's QEMU sees as /tmp, and exit
#   --check-qemu        print QEMU's version and `-device vfio-user-pci,help`, and exit
# Exit status: 0 every check passed; 1 a check failed; 125 rig failure (no VU-END came back:
# QEMU refused a device, the guest hung past --timeout, setup failed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${VFIOBOX_LAB_VU_TIMEOUT:-240}
GUEST_TIMEOUT=20
MEM=512M
OUT=""
EXTRA=()
SOCKS=()

log() { echo "[lab-vu] $*" >&2; }
die() { echo "[lab-vu] ERROR: $*" >&2; exit 125; }

usage() { sed -n '3,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }

parse_args() {
  MODE=boot
  while [ $# -gt 0 ]; do
    case "$1" in
      --out) OUT=$2; shift 2 ;;
      --timeout) TIMEOUT=$2; shift 2 ;;
      --guest-timeout) GUEST_TIMEOUT=$2; shift 2 ;;
      --mem) MEM=$2; shift 2 ;;
      --qemu-arg) EXTRA+=("$2"); shift 2 ;;
      --sock-dir) MODE=sockdir; shift ;;
      --check-qemu) MODE=check; shift ;;
      -h | --help) usage; exit 0 ;;
      --) shift; SOCKS+=("$@"); break ;;
      -*) die "unknown option $1 (try --help)" ;;
      *) SOCKS+=("$1"); shift ;;
    esac
  done
  [ ${#SOCKS[@]} -le 8 ] || die "at most 8 devices (got ${#SOCKS[@]})"
}

# Sets LVU_* from setup.sh (fast when the cache is warm).
load_setup() {
  local env
  env=$(bash "$HERE/setup.sh" --env) || exit 125
  eval "$env"
}

# Runs QEMU in the chroot inside a private mount namespace. The bind mounts (out dir, guest
# files, socket directories) exist only for this VM and vanish with it.
#   $1 = file for QEMU's stderr ("-": ours), then the QEMU arguments.
run_qemu() {
  local qlog=$1
  shift
  # Through fd 9: opening /dev/stderr fails when our stderr is a socket (ENXIO).
  if [ "$qlog" = - ]; then exec 9>&2; else exec 9>>"$qlog"; fi
  local binds=() i=0 s
  [ -n "$OUT" ] && binds+=("$OUT" out)
  binds+=("$(dirname "$LVU_KERNEL")" guest)
  for s in "${SOCKS[@]}"; do binds+=("$(dirname "$s")" "s$i"); i=$((i + 1)); done
  unshare --mount --propagation private -- /bin/bash -c '
    set -e; R=$1; T=$2; n=$3; shift 3
    mount -t proc proc "$R/proc"
    mount --rbind /dev "$R/dev"
    mount -t tmpfs -o size=64k,mode=0755 lab-vu "$R/mnt"
    while [ "$n" -gt 0 ]; do
      mkdir "$R/mnt/$2"; mount --bind "$1" "$R/mnt/$2"; shift 2; n=$((n - 1))
    done
    exec timeout --foreground -k 5 "$T" chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin \
      qemu-system-x86_64 "$@"' run_qemu "$LVU_ROOT" "$TIMEOUT" $((${#binds[@]} / 2)) \
    "${binds[@]}" "$@" </dev/null 2>&9
}

check_qemu() {
  load_setup
  echo "QEMU package: $LVU_QEMU_VERSION"
  OUT=""
  run_qemu - --version
  run_qemu - -device vfio-user-pci,help
}

qemu_args() {
  local append="console=ttyS0 panic=-1 mitigations=off vu.timeout=$GUEST_TIMEOUT"
  QARGS=(-nodefaults -no-user-config -machine q35,memory-backend=mem -accel tcg -cpu max -smp 1
    -m "$MEM" -object "memory-backend-memfd,id=mem,size=$MEM,share=on"
    -display none -monitor none -no-reboot
    -kernel "/mnt/guest/vmlinuz" -initrd "/mnt/guest/$(basename "$LVU_INITRD")" -append "$append"
    # ttyS0: the kernel console; ttyS1: the results channel (the guest's 16550s come after).
    -chardev file,id=con,path=/mnt/out/console.log -serial chardev:con
    -chardev file,id=res,path=/mnt/out/results.log -serial chardev:res
    -trace 'vfio_user_*' -D /mnt/out/qemu-trace.log)
  local i=0 s
  for s in "${SOCKS[@]}"; do
    [ -S "$s" ] || die "not a socket: $s"
    QARGS+=(-device "{\"driver\":\"vfio-user-pci\",\"addr\":\"0x1$i\",\"socket\":{\"type\":\"unix\",\"path\":\"/mnt/s$i/$(basename "$s")\"}}")
    i=$((i + 1))
  done
  QARGS+=("${EXTRA[@]}")
}

# Prints the VU lines, explains a rig failure, returns the exit status.
report() {
  local qrc=$1 res=$OUT/results.log
  [ -f "$res" ] || : >"$res"
  tr -d '\r' <"$res" | grep '^VU ' || true
  local end
  end=$(tr -d '\r' <"$res" | sed -n 's/^VU-END \([0-9]*\)$/\1/p' | tail -1)
  if [ -z "$end" ]; then
    [ "$qrc" = 124 ] && log "timed out after ${TIMEOUT}s"
    log "no VU-END came back (qemu exit $qrc)"
    [ -s "$OUT/qemu.log" ] && { log "QEMU stderr:"; tail -20 "$OUT/qemu.log" >&2; }
    [ -s "$OUT/console.log" ] && { log "last kernel console lines:"; tail -25 "$OUT/console.log" >&2; }
    return 125
  fi
  if [ "$end" = 0 ] && ! tr -d '\r' <"$res" | grep -q '^VU [^ ]* fail'; then return 0; fi
  return 1
}

main() {
  parse_args "$@"
  [ "$(id -u)" = 0 ] || die "needs root (chroot, mount namespace)"
  case "$MODE" in
    check) check_qemu; return ;;
    sockdir) load_setup; mkdir -p "$LVU_ROOT/tmp"; echo "$LVU_ROOT/tmp"; return ;;
  esac
  local t0=$SECONDS
  load_setup
  local tmp_out=0
  if [ -z "$OUT" ]; then
    OUT=$(mktemp -d /tmp/lab-vu-run.XXXXXX)
    tmp_out=1
  fi
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  rm -f "$OUT"/{console.log,results.log,qemu-trace.log,qemu.log}
  if [ $tmp_out = 1 ] && [ "${VFIOBOX_LAB_VU_KEEP_OUT:-0}" != 1 ]; then
    trap 'rm -rf "$OUT"' EXIT
  elif [ $tmp_out = 1 ]; then
    trap 'log "run dir kept: $OUT"' EXIT
  fi
  qemu_args
  log "booting sid $LVU_KERNEL_VERSION under QEMU $LVU_QEMU_VERSION with ${#SOCKS[@]} vfio-user device(s)"
  local t1=$SECONDS qrc=0
  run_qemu "$OUT/qemu.log" "${QARGS[@]}" || qrc=$?
  log "guest done in $((SECONDS - t1))s (setup $((t1 - t0))s, qemu exit $qrc)"
  local rc=0
  report "$qrc" || rc=$?
  return $rc
}

main "$@"
