import { createHash } from 'node:crypto';
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import type { SipRequest, SipResponse, Uri } from '../message/index.js';
import type { CallEnd, CdrMedia, CdrRecord, CdrStore, MissedCause } from '../store/index.js';
import { hostPort } from '../transport/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { ConfigError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/** What the location service said about the callee of a call to a user of ours. */
export type CalleePresence = 'registered' | 'not-registered';

/** What the proxy tells accounting; every call is fire-and-forget and never throws back into the proxy. */
export interface CallAccounting {
  /** Every INVITE that got a final response from the proxy (its status, whatever it is). */
  attempt(invite: SipRequest, final: SipResponse): void;
  /** An INVITE answered 2xx: the call starts (dialog = Call-ID + From tag + To tag of the 2xx). */
  answered(invite: SipRequest, ok: SipResponse): void;
  /** A BYE (either direction) that got a final response: the call stops. */
  ended(bye: SipRequest, final: SipResponse): void;
  /**
   * An INVITE to a user of ours (looked up in the location service) that got a final response other than 2xx,
   * once per INVITE whatever the forking: a missed call unless the final is a redirect (3xx).
   */
  missed(invite: SipRequest, final: SipResponse, callee: CalleePresence): void;
  /**
   * The SBC relays this call's media and will tell its counters (`media`) when the call is over: the call record
   * waits for them, MEDIA_WAIT_MS at most, when the BYE comes first.
   */
  expectMedia?(callId: string): void;
  media?(callId: string, media: CdrMedia): void;
}

/** How long a call record waits for the media relay's counters after the BYE, ms. */
export const MEDIA_WAIT_MS = 2000;

/**
 * Why the callee missed the call, from what the location service said and the final response the caller got:
 * nobody registered; busy (486 Busy Here, 600 Busy Everywhere); no answer (408 Request Timeout: the branch or
 * Timer C ran out; 480 Temporarily Unavailable); cancelled by the caller (487); declined (603); other failures.
 */
export function missedCause(status: number, callee: CalleePresence): MissedCause {
  if (callee === 'not-registered') return 'not-registered';
  switch (status) {
    case 486:
    case 600:
      return 'busy';
    case 408:
    case 480:
      return 'no-answer';
    case 487:
      return 'cancelled';
    case 603:
      return 'declined';
    default:
      return 'failed';
  }
}

export interface AccountingOptions {
  store: CdrStore;
  /** Every record is also appended here as one JSON object per line. Opened once, never rotated by sipway. */
  jsonlFile?: string;
  clock: Clock;
  logger: Logger;
  /** Answered calls awaiting their BYE; beyond it the oldest is dropped (with a warning). Default 100000. */
  maxOpenCalls?: number;
  /** A call with no BYE after this long is closed as 'timeout'. Default 6 h. */
  maxCallDurationMs?: number;
  /** Period of the sweep that closes such calls. Default 60 s. */
  sweepIntervalMs?: number;
}

export const DEFAULT_MAX_OPEN_CALLS = 100_000;
export const DEFAULT_MAX_CALL_DURATION_MS = 6 * 3600_000;
export const DEFAULT_CALL_SWEEP_INTERVAL_MS = 60_000;

interface OpenCall {
  /** The call record so far: everything but how it ended. */
  record: CdrRecord;
  /** The caller's tag (the INVITE's From tag): a BYE carrying it as From tag comes from the caller. */
  callerTag: string | undefined;
}

/**
 * Call accounting in the manner of SER's acc module, "report missed calls" included: attempt records for every
 * INVITE's final response, call records (start, stop, duration, who hung up) for answered calls once they end,
 * missed-call records for calls to local users that were not answered, with the cause. Records go to the CdrStore
 * and, when configured, to a JSON-lines file.
 *
 * Open calls live in memory, keyed by dialog (§12: Call-ID plus both tags, in either order since a BYE from the
 * callee swaps From and To). There is no timer per call: one periodic sweep closes calls whose BYE never came.
 */
export class Accounting implements CallAccounting {
  private readonly store: CdrStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly maxOpenCalls: number;
  private readonly maxCallDurationMs: number;
  private readonly sweepIntervalMs: number;
  /** Insertion order is answer order, so the oldest call is always first. */
  private readonly open = new Map<string, OpenCall>();
  /** Calls whose relay counters are to come, by Call-ID: the media once told, or the ended record waiting for them. */
  private readonly relayed = new Map<string, { media?: CdrMedia; waiting?: { record: CdrRecord; timer: TimerHandle } }>();
  private readonly file: WriteStream | undefined;
  private readonly pending = new Set<Promise<void>>();
  private sweepTimer: TimerHandle | undefined;
  private closed = false;

  constructor(options: AccountingOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.logger = options.logger;
    this.maxOpenCalls = positiveInteger('accounting.maxOpenCalls', options.maxOpenCalls, DEFAULT_MAX_OPEN_CALLS);
    this.maxCallDurationMs = positiveInteger('accounting.maxCallDurationMs', options.maxCallDurationMs, DEFAULT_MAX_CALL_DURATION_MS);
    this.sweepIntervalMs = positiveInteger('accounting.sweepIntervalMs', options.sweepIntervalMs, DEFAULT_CALL_SWEEP_INTERVAL_MS);
    if (options.jsonlFile !== undefined) this.file = openJsonl(options.jsonlFile, this.logger);
    this.armSweep();
  }

  attempt(invite: SipRequest, final: SipResponse): void {
    this.guard('attempt', () => {
      if (isReInvite(invite)) return;
      this.write({ ...this.describe(invite, 'attempt', final.status, final.reason), ...tag('toTag', final.toTag) });
    });
  }

  answered(invite: SipRequest, ok: SipResponse): void {
    this.guard('answered', () => {
      if (isReInvite(invite)) return;
      const key = dialogKey(invite.callId, invite.fromTag, ok.toTag);
      // A retransmitted 2xx names a dialog that is already open.
      if (this.open.has(key)) return;
      if (this.open.size >= this.maxOpenCalls) this.dropOldest();
      const record = { ...this.describe(invite, 'call', ok.status, ok.reason), ...tag('toTag', ok.toTag) };
      this.open.set(key, { record, callerTag: invite.fromTag });
    });
  }

  ended(bye: SipRequest, final: SipResponse): void {
    this.guard('ended', () => {
      const key = dialogKey(bye.callId, bye.fromTag, bye.toTag);
      const call = this.open.get(key);
      if (!call) {
        this.logger.debug({ callId: bye.callId, status: final.status }, 'accounting: BYE for a call not being accounted');
        return;
      }
      // §15.1.2: whatever the BYE's final response, the session is over for the party that sent it.
      this.finish(key, call, bye.fromTag === call.callerTag ? 'caller' : 'callee');
    });
  }

  missed(invite: SipRequest, final: SipResponse, callee: CalleePresence): void {
    this.guard('missed', () => {
      // A redirect is not missed: the caller goes on to the contacts it names.
      if (isReInvite(invite) || final.status < 400) return;
      this.write({ ...this.describe(invite, 'missed', final.status, final.reason), cause: missedCause(final.status, callee) });
    });
  }

  /** Calls answered and not yet ended. */
  get openCalls(): number {
    return this.open.size;
  }

  /** Closes calls open for longer than maxCallDurationMs (the periodic sweep calls this); returns how many. */
  sweep(): number {
    const oldestAllowed = this.clock.now() - this.maxCallDurationMs;
    let closed = 0;
    for (const [key, call] of this.open) {
      if (call.record.time > oldestAllowed) break;
      this.finish(key, call, 'timeout');
      closed++;
    }
    return closed;
  }

  /**
   * Stops the sweep, waits for records being written and closes the JSON-lines file. Calls still open are not
   * written: their end is unknown (they are counted in a warning).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    if (this.open.size > 0) this.logger.warn({ openCalls: this.open.size }, 'accounting stopped with calls still open; no records for them');
    this.open.clear();
    // Ended calls still waiting for their relay counters are written without them.
    for (const entry of this.relayed.values()) {
      if (entry.waiting === undefined) continue;
      entry.waiting.timer.cancel();
      this.write(entry.waiting.record);
    }
    this.relayed.clear();
    await Promise.all(this.pending);
    const file = this.file;
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }

  private armSweep(): void {
    this.sweepTimer = this.clock.setTimer(this.sweepIntervalMs, () => {
      this.armSweep();
      this.guard('sweep', () => this.sweep());
    });
  }

  private dropOldest(): void {
    const [key, call] = this.open.entries().next().value as [string, OpenCall];
    this.open.delete(key);
    this.logger.warn(
      { callId: call.record.callId, caller: call.record.caller, callee: call.record.callee, maxOpenCalls: this.maxOpenCalls },
      'accounting: too many open calls; the oldest is dropped without a record',
    );
  }

  expectMedia(callId: string): void {
    this.guard('expectMedia', () => {
      // Bounded like the open calls: an SBC call that is never answered leaves an entry the sweep does not see.
      if (this.relayed.size >= this.maxOpenCalls) this.relayed.delete(this.relayed.keys().next().value!);
      if (!this.relayed.has(callId)) this.relayed.set(callId, {});
    });
  }

  media(callId: string, media: CdrMedia): void {
    this.guard('media', () => {
      const entry = this.relayed.get(callId);
      if (entry === undefined) return;
      if (entry.waiting) {
        entry.waiting.timer.cancel();
        this.relayed.delete(callId);
        this.write({ ...entry.waiting.record, media });
      } else entry.media = media;
    });
  }

  private finish(key: string, call: OpenCall, endedBy: CallEnd): void {
    this.open.delete(key);
    const stopTime = this.clock.now();
    const durationMs = Math.max(0, stopTime - call.record.time);
    const record: CdrRecord = { ...call.record, stopTime, durationMs, durationS: Math.ceil(durationMs / 1000), endedBy };
    const entry = this.relayed.get(call.record.callId);
    if (entry === undefined) return this.write(record);
    if (entry.media !== undefined) {
      this.relayed.delete(call.record.callId);
      return this.write({ ...record, media: entry.media });
    }
    // The relay's counters come when the SBC has taken its call down, a moment after the BYE.
    const timer = this.clock.setTimer(MEDIA_WAIT_MS, () => {
      this.relayed.delete(call.record.callId);
      this.write(record);
    });
    entry.waiting = { record, timer };
  }

  private describe(invite: SipRequest, type: CdrRecord['type'], status: number, reason: string): CdrRecord {
    const record: CdrRecord = {
      type,
      time: this.clock.now(),
      callId: capped(invite.callId),
      caller: capped(addressOfRecord(invite.from.uri)),
      callee: capped(addressOfRecord(invite.to.uri)),
      requestUri: capped(invite.uri.toString()),
      status,
      reason: capped(reason),
      ...tag('fromTag', invite.fromTag),
    };
    const s = invite.source;
    if (s) record.source = `${s.transport}:${hostPort(s.address, s.port)}`;
    return record;
  }

  private write(record: CdrRecord): void {
    const stored = this.store
      .add(record)
      .catch((err: unknown) => this.logger.error({ err, callId: record.callId, type: record.type }, 'accounting: CDR not stored'))
      .finally(() => this.pending.delete(stored));
    this.pending.add(stored);
    this.file?.write(JSON.stringify(record) + '\n');
  }

  /**
   * Accounting must never break call handling: a malformed header is logged, not thrown into the proxy. Events
   * after close (calls finishing during shutdown) are ignored.
   */
  private guard(what: string, fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      this.logger.warn({ err, event: what }, 'accounting: event not recorded');
    }
  }
}

/** §14: an INVITE inside a dialog (To tag present) modifies a call, it does not start one. */
function isReInvite(invite: SipRequest): boolean {
  return invite.toTag !== undefined;
}

/** §12: a dialog is Call-ID, local tag, remote tag; which tag is local depends on the side, so order them. */
function dialogKey(callId: string, tagA: string | undefined, tagB: string | undefined): string {
  const a = tagA ?? '';
  const b = tagB ?? '';
  const key = a < b ? `${callId}\n${a}\n${b}` : `${callId}\n${b}\n${a}`;
  // Every open call is held in memory until its BYE: a key made of header values up to the message size limit
  // would let a caller pin megabytes per call. A digest names a long one instead.
  return key.length <= MAX_FIELD ? key : `#${createHash('sha256').update(key).digest('base64')}`;
}

/**
 * The longest text a record keeps of a header value (Call-ID, URIs, tags, reason): a record is written to disk and
 * an answered call's is held in memory until its BYE, so its size must not be the sender's to choose.
 */
export const MAX_FIELD = 256;

function capped(text: string): string {
  return text.length <= MAX_FIELD ? text : `${text.slice(0, MAX_FIELD - 3)}...`;
}

/**
 * Who, rather than where: sip and sips URIs reduce to sip:user@host (host lower-cased, user unescaped; port,
 * parameters and headers dropped), so that `sipway cdr --user` finds every call of an AOR. Other URIs stay whole.
 */
function addressOfRecord(uri: Uri): string {
  if (uri.type !== 'sip') return uri.toString();
  const host = uri.host.toLowerCase();
  return uri.user === undefined ? `sip:${host}` : `sip:${uri.userUnescaped}@${host}`;
}

function tag<K extends 'fromTag' | 'toTag'>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: capped(value) } as Record<K, string>);
}

function positiveInteger(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new ConfigError(field, `must be a positive integer (got ${v})`);
  return v;
}

/** Opened now, so that a bad path is a ConfigError at startup rather than a lost stream of records later. */
function openJsonl(path: string, logger: Logger): WriteStream {
  let fd: number;
  try {
    fd = openSync(path, 'a');
  } catch (err) {
    throw new ConfigError('accounting.jsonlFile', `cannot open ${path}: ${(err as Error).message}`);
  }
  const stream = createWriteStream(path, { fd });
  stream.on('error', (err) => logger.error({ err, file: path }, 'accounting: JSON-lines file write failed'));
  return stream;
}
