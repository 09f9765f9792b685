import { ConfigError } from '../util/errors.js';

/** The base timer values of RFC 3261 §17.1.1.1 and Table 4, in milliseconds. */
export interface TimerConfig {
  /** RTT estimate. */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses. */
  T2: number;
  /** Maximum duration a message will remain in the network. */
  T4: number;
  /**
   * How long a transaction that has its final response stays to absorb retransmissions (Timers D and J over UDP, L
   * and M; Kamailio's wt_timer). Unset: 64*T1 (32 s), the RFC's; D is then at least 32 s as §17.1.1.2 asks.
   */
  linger?: number;
}

export const DEFAULT_TIMER_CONFIG: Readonly<TimerConfig> = Object.freeze({ T1: 500, T2: 4000, T4: 5000 });

/**
 * §17.2.1: the INVITE server transaction answers 100 Trying itself unless the TU sends a provisional response within
 * 200 ms. Not configurable: it is about stopping retransmissions (first at T1), not about the network.
 */
export const TRYING_DELAY_MS = 200;

export function resolveTimerConfig(partial: Partial<TimerConfig> = {}): TimerConfig {
  const config = { ...DEFAULT_TIMER_CONFIG, ...partial };
  for (const name of ['T1', 'T2', 'T4'] as const) {
    const v = config[name];
    if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`timers.${name}`, `must be a positive number of milliseconds (got ${v})`);
  }
  if (config.T2 < config.T1) throw new ConfigError('timers.T2', 'must not be smaller than T1');
  if (config.linger !== undefined && (!Number.isFinite(config.linger) || config.linger <= 0)) {
    throw new ConfigError('timers.linger', `must be a positive number of milliseconds (got ${config.linger})`);
  }
  return config;
}

/**
 * Durations derived from the base values (RFC 3261 Table 4; RFC 6026 Timers L and M). Retransmission timers (A, E, G)
 * hold their initial interval and are only started on unreliable transports; the wait timers that exist to absorb
 * retransmissions (D, I, J, K) are zero on reliable transports, where there are none to absorb.
 */
export interface TimerDurations {
  T2: number;
  A: number;
  B: number;
  D: number;
  E: number;
  F: number;
  G: number;
  H: number;
  I: number;
  J: number;
  K: number;
  L: number;
  M: number;
}

/** One pair of duration tables per config: every transaction shares them (a flood keeps 100,000 transactions alive). */
const tables = new WeakMap<TimerConfig, { reliable: Readonly<TimerDurations>; unreliable: Readonly<TimerDurations> }>();

export function timerDurations(config: TimerConfig, reliable: boolean): Readonly<TimerDurations> {
  let pair = tables.get(config);
  if (pair === undefined) {
    pair = { reliable: Object.freeze(computeDurations(config, true)), unreliable: Object.freeze(computeDurations(config, false)) };
    tables.set(config, pair);
  }
  return reliable ? pair.reliable : pair.unreliable;
}

function computeDurations(config: TimerConfig, reliable: boolean): TimerDurations {
  const window = 64 * config.T1;
  // A shorter linger trades memory (every completed call is held this long) for late retransmissions: one that
  // comes after it is a new request (J), or a response no transaction matches, which a proxy forwards statelessly.
  const linger = config.linger ?? window;
  return {
    T2: config.T2,
    A: config.T1,
    B: window,
    // "At least 32 seconds": the peer's server transaction may retransmit its final response for up to 64*T1 (Timer H).
    D: reliable ? 0 : config.linger ?? Math.max(32_000, window),
    E: config.T1,
    F: window,
    G: config.T1,
    H: window,
    I: reliable ? 0 : config.T4,
    J: reliable ? 0 : linger,
    K: reliable ? 0 : config.T4,
    L: linger,
    M: linger,
  };
}
