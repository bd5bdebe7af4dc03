#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside ONE lab guest (bench/run.mjs boots it through test/lab/run-in-guest.sh):
# for REPS repetitions, for both backends, the C baseline and the TS benchmark on the first edu
# device, alternating which goes first so that drift in the guest hits both alike.
#
#   run-all.sh CBIN NODE TSJS REPS N4K N2M NBAR BATCH [BATCH2M]
#
# stdout: the JSON lines of both programs, each extended with "rep"; a failing program adds
#   {"impl":...,"backend":...,"error":"exit N"} and the run goes on.
# stderr: progress.
set -u
CBIN=$1 NODE=$2 TSJS=$3 REPS=$4 N4K=$5 N2M=$6 NBAR=$7 BATCH=$8 BATCH2M=${9:-8}
BDF=${VFIOLAB_DEV0_BDF:?no edu device in this guest (VFIOLAB_DEV0_BDF unset)}
ARGS="--bdf $BDF --n4k $N4K --n2m $N2M --nbar $NBAR --batch $BATCH --batch2m $BATCH2M"

echo "run-all: device $BDF (${VFIOLAB_DEV0_ID:-?}), $REPS reps, n4k=$N4K n2m=$N2M nbar=$NBAR batch=$BATCH batch2m=$BATCH2M" >&2
echo "run-all: guest $(uname -r), $(nproc) vCPU(s), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)" >&2

run_one() { # impl backend cmd...
  impl=$1 backend=$2
  shift 2
  out=$("$@" --backend "$backend" $ARGS)
  rc=$?
  printf '%s\n' "$out" | grep '^{' | sed "s/}\$/,\"rep\":$rep}/"
  if [ $rc -ne 0 ]; then
    echo "{\"impl\":\"$impl\",\"backend\":\"$backend\",\"error\":\"exit $rc\",\"rep\":$rep}"
    echo "run-all: $impl $backend rep $rep failed (exit $rc)" >&2
  fi
}

rep=1
while [ "$rep" -le "$REPS" ]; do
  for backend in legacy iommufd; do
    echo "run-all: rep $rep/$REPS $backend" >&2
    if [ $((rep % 2)) -eq 1 ]; then
      run_one c "$backend" "$CBIN"
      run_one ts "$backend" "$NODE" "$TSJS"
    else
      run_one ts "$backend" "$NODE" "$TSJS"
      run_one c "$backend" "$CBIN"
    fi
  done
  rep=$((rep + 1))
done
echo "run-all: done" >&2
