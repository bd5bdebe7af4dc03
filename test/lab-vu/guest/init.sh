#!/bin/sh
# SPDX-License-Identifier: MIT
# lab-vu guest /init (busybox). ttyS0 is the kernel console (boot.sh: console.log); ttyS1 is
# the results channel: "VU <name> ok|fail <detail>" lines, then "VU-END <rc>", then power off.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
R=/dev/ttyS1
# Raw output on the results port: no \r\n translation, no echo.
stty -F $R raw -echo 2>/dev/null

fail=0
for m in $(cat /lib/modules/order); do
  out=$(insmod /lib/modules/$m.ko 2>&1) || { echo "VU module.$m fail $out" >$R; fail=1; }
done
echo "VU boot ok kernel $(uname -r)" >$R
echo "lab-vu: running vu-check" >/dev/console
/bin/vu-check >$R 2>/dev/console
rc=$?
[ $fail = 0 ] || rc=1
echo "VU-END $rc" >$R
echo "lab-vu: vu-check exited $rc, powering off" >/dev/console
sync
poweroff -f
