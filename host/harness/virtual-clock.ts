// SPDX-License-Identifier: MIT
// A DeviceClock (host/device/clock.ts) whose time moves only through advance(): timers fire
// synchronously inside advance(), in due-time order, ties in the order they were armed. This is
// what makes the harness deterministic: no real time, no event loop turns.

import type { DeviceClock } from '../device/clock.js';

interface Armed {
  dueNs: bigint;
  seq: number;
  fire: () => void;
}

/** A timer that re-arms itself with no delay would otherwise spin advance() forever. */
const MAX_FIRES_PER_ADVANCE = 1_000_000;

export class VirtualClock implements DeviceClock {
  #nowNs = 0n;
  #seq = 0;
  readonly #timers = new Map<string, Armed>();

  nowNs(): bigint {
    return this.#nowNs;
  }

  setTimer(id: string, delayNs: bigint, fire: () => void): void {
    const dueNs = this.#nowNs + (delayNs > 0n ? delayNs : 0n);
    this.#timers.set(id, { dueNs, seq: this.#seq++, fire });
  }

  cancel(id: string): void {
    this.#timers.delete(id);
  }

  cancelAll(): void {
    this.#timers.clear();
  }

  /** Armed timer ids. */
  get pending(): string[] {
    return [...this.#timers.keys()];
  }

  /** When the next timer is due, or undefined when none is armed. */
  nextDueNs(): bigint | undefined {
    return this.#next()?.[1].dueNs;
  }

  #next(): [string, Armed] | undefined {
    let best: [string, Armed] | undefined;
    for (const entry of this.#timers) {
      const [, t] = entry;
      if (!best || t.dueNs < best[1].dueNs || (t.dueNs === best[1].dueNs && t.seq < best[1].seq)) {
        best = entry;
      }
    }
    return best;
  }

  /**
   * Moves time forward by `ns`, firing every timer due up to the new time (including ones armed
   * by the timers themselves), each with the clock set to its due time. Returns how many fired.
   */
  advance(ns: bigint | number): number {
    const delta = BigInt(ns);
    if (delta < 0n) throw new RangeError(`advance: expected ns >= 0, got ${delta}`);
    const target = this.#nowNs + delta;
    let fired = 0;
    for (;;) {
      const next = this.#next();
      if (!next || next[1].dueNs > target) break;
      if (fired >= MAX_FIRES_PER_ADVANCE) {
        throw new RangeError(
          `advance: over ${MAX_FIRES_PER_ADVANCE} timers fired (a timer re-arming itself at 0 delay?)`,
        );
      }
      this.#timers.delete(next[0]);
      this.#nowNs = next[1].dueNs;
      fired++;
      next[1].fire();
    }
    this.#nowNs = target;
    return fired;
  }
}
