// SPDX-License-Identifier: MIT
// Time as a device model sees it: a monotonic clock and one-shot timers by id. The real clock
// uses setTimeout (unref'd: an armed device timer never keeps the process alive); the test
// harness uses host/harness/virtual-clock.ts, where time moves only when the test says so.
// A clock serves one device: timer ids are the device's own namespace.

/** Monotonic time and one-shot timers; arming an armed id moves it. */
export interface DeviceClock {
  nowNs(): bigint;
  setTimer(id: string, delayNs: bigint, fire: () => void): void;
  cancel(id: string): void;
  cancelAll(): void;
}

/** setTimeout's limit: a larger delay fires at once, so longer timers are re-armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The wall clock: process.hrtime for time, setTimeout (rounded up to whole ms) for timers. */
export function realClock(): DeviceClock {
  const origin = process.hrtime.bigint();
  const timers = new Map<string, NodeJS.Timeout>();
  const nowNs = () => process.hrtime.bigint() - origin;
  const arm = (id: string, dueNs: bigint, fire: () => void): void => {
    const leftNs = dueNs - nowNs();
    const ms =
      leftNs <= 0n ? 0 : Math.min(MAX_TIMEOUT_MS, Number((leftNs + 999_999n) / 1_000_000n));
    const handle = setTimeout(() => {
      if (timers.get(id) !== handle) return;
      if (nowNs() < dueNs) {
        arm(id, dueNs, fire);
        return;
      }
      timers.delete(id);
      fire();
    }, ms);
    handle.unref();
    timers.set(id, handle);
  };
  return {
    nowNs,
    setTimer(id, delayNs, fire) {
      const old = timers.get(id);
      if (old) clearTimeout(old);
      arm(id, nowNs() + (delayNs > 0n ? delayNs : 0n), fire);
    },
    cancel(id) {
      const old = timers.get(id);
      if (old) clearTimeout(old);
      timers.delete(id);
    },
    cancelAll() {
      for (const handle of timers.values()) clearTimeout(handle);
      timers.clear();
    },
  };
}
