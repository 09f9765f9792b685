import type { NameAddr, SipRequest, SipResponse, Uri } from '../message/index.js';
import { canonicalAor } from '../registrar/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/** RFC 4235 §3.7.1: the states of a dialog's finite state machine. */
export type DialogInfoState = 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';

/** RFC 4235 §4.1: whether the AOR's side sent the INVITE (initiator) or received it (recipient). */
export type DialogDirection = 'initiator' | 'recipient';

/** RFC 4235 §4.1.6.2: why a dialog ended, as the event attribute of its terminated state. */
export type DialogEndEvent = 'cancelled' | 'rejected' | 'replaced' | 'local-bye' | 'remote-bye' | 'error' | 'timeout';

/** One side of a call as the proxy saw it. */
export interface DialogParty {
  /** The canonical AOR when the party is a user of ours: only their dialogs are tracked. */
  aor?: string;
  /** The URI of its From (caller) or To (callee). */
  identity: string;
  display?: string;
  /** Its Contact: the INVITE's for the caller, a response's for the callee (none before one has come). */
  target?: string;
}

/**
 * One change of the dialog state of our users, as plain JSON (so that it may travel between worker processes and be
 * applied in the same order everywhere): a call's progress (the INVITE forwarded, a provisional response, the 2xx),
 * the INVITE's non-2xx final response, or a BYE. `at` is when the proxy saw it (ms since the epoch), so that every
 * process computes the same durations; `aors` are the parties that are users of ours (whose watchers are told).
 */
export type DialogUpdate =
  | {
      type: 'trying' | 'proceeding' | 'early' | 'confirmed';
      at: number;
      aors: string[];
      callId: string;
      fromTag: string;
      /** The To tag of the response (early and confirmed). */
      toTag?: string;
      caller: DialogParty;
      callee: DialogParty;
    }
  | {
      /** The INVITE got a non-2xx final response: every dialog of the call that is not confirmed ends. */
      type: 'ended';
      at: number;
      aors: string[];
      callId: string;
      fromTag: string;
      event: 'cancelled' | 'rejected' | 'timeout' | 'error';
      code: number;
    }
  | {
      /** A BYE: the dialog with these tags (either order) ends; `by` is the BYE's From tag (who hung up). */
      type: 'bye';
      at: number;
      aors: string[];
      callId: string;
      tags: [string, string];
      by: string;
    };

/** A dialog of one of our users, as the dialog event package reports it (RFC 4235 §4.1). */
export interface DialogEntry {
  /** Unique within the AOR's document, stable for the dialog's life (a hash of Call-ID, tags and direction). */
  readonly id: string;
  readonly aor: string;
  readonly callId: string;
  readonly direction: DialogDirection;
  /** The INVITE's From tag and the To tag of the response that made the dialog (none while trying or proceeding). */
  readonly fromTag: string;
  toTag: string | undefined;
  state: DialogInfoState;
  /** Why it ended, and the final response's status when it was one (terminated only). */
  event?: DialogEndEvent;
  code?: number;
  readonly createdAt: number;
  endedAt?: number;
  local: DialogParty;
  remote: DialogParty;
  /** The tracker's change counter when this entry last changed (DialogStates.seq). */
  seq: number;
}

export interface DialogStatesOptions {
  /** Whether a host is a domain of ours: only its users' dialogs are tracked. */
  isOurs(host: string): boolean;
  /** The time `record` puts in updates (every process applying them computes durations from it). */
  clock: Clock;
  logger?: Logger;
  /** Dialogs kept per AOR (live and ended apiece); beyond, the oldest is dropped. Default 32. */
  maxPerAor?: number;
  /** Dialogs kept in all (live and ended apiece); beyond, the oldest is dropped. Default 100,000. */
  maxDialogs?: number;
  /** A dialog older than this is taken for ended (its BYE did not pass here), ms. Default 6 h. */
  maxDurationMs?: number;
  /** How long an ended dialog is kept for the NOTIFYs that report it (longer than the notifier's pacing), ms. Default 60 s. */
  keepEndedMs?: number;
}

export const DEFAULT_DIALOGS_PER_AOR = 32;
export const DEFAULT_MAX_DIALOGS = 100_000;
export const DEFAULT_MAX_DIALOG_DURATION_MS = 6 * 3600_000;
export const DEFAULT_KEEP_ENDED_MS = 60_000;

/** What the tracker holds and has dropped. */
export interface DialogStatesStats {
  /** Live dialogs. */
  dialogs: number;
  /** Ended dialogs kept for their last report. */
  ended: number;
  /** Dialogs dropped for a cap (per AOR or in all) before they ended. */
  dropped: number;
  /** Dialogs taken for ended after maxDurationMs. */
  expired: number;
}

/** The calls of `CallStateObserver` (the proxy's; repeated here because presence and proxy may not import each other). */
export interface DialogObserver {
  trying(invite: SipRequest): void;
  early(invite: SipRequest, provisional: SipResponse): void;
  confirmed(invite: SipRequest, ok: SipResponse): void;
  terminated(request: SipRequest, reason: string, final: SipResponse): void;
}

/** A per-AOR pair of maps: live dialogs and ended ones (by id, oldest first). */
interface AorDialogs {
  live: Map<string, DialogEntry>;
  ended: Map<string, DialogEntry>;
}

const RANK: Record<DialogInfoState, number> = { trying: 0, proceeding: 1, early: 2, confirmed: 3, terminated: 4 };

/**
 * The dialogs of our users as the proxy sees their calls (RFC 4235's dialog state, for busy-lamp fields): both the
 * caller's AOR (initiator) and the callee's (recipient), whichever are ours. Changes come as `DialogUpdate`s: `record`
 * turns what the proxy saw into one (no state read or changed, so it can be sent to other processes), `apply` changes
 * the state, in the same way wherever it is applied, and says which AORs changed. An ended dialog is kept a short
 * while so that its NOTIFY can report it once, then forgotten. Bounded per AOR and in all.
 */
export class DialogStates {
  private readonly aors = new Map<string, AorDialogs>();
  /** Live dialogs by Call-ID (a BYE and the INVITE's responses find theirs here). */
  private readonly byCall = new Map<string, Set<DialogEntry>>();
  /** Every live dialog, oldest first (insertion order); and every ended one, first ended first. */
  private readonly liveOrder = new Set<DialogEntry>();
  private readonly endedOrder = new Set<DialogEntry>();
  private readonly maxPerAor: number;
  private readonly maxDialogs: number;
  private readonly maxDurationMs: number;
  private readonly keepEndedMs: number;
  private counter = 0;
  private droppedCount = 0;
  private expiredCount = 0;

  constructor(private readonly options: DialogStatesOptions) {
    this.maxPerAor = options.maxPerAor ?? DEFAULT_DIALOGS_PER_AOR;
    this.maxDialogs = options.maxDialogs ?? DEFAULT_MAX_DIALOGS;
    this.maxDurationMs = options.maxDurationMs ?? DEFAULT_MAX_DIALOG_DURATION_MS;
    this.keepEndedMs = options.keepEndedMs ?? DEFAULT_KEEP_ENDED_MS;
  }

  /** Counts up with every applied update: an entry whose `seq` is above a reader's last look has changed since. */
  get seq(): number {
    return this.counter;
  }

  get stats(): DialogStatesStats {
    return { dialogs: this.liveOrder.size, ended: this.endedOrder.size, dropped: this.droppedCount, expired: this.expiredCount };
  }

  /** The live dialogs of `aor`, oldest first. */
  dialogs(aor: string): DialogEntry[] {
    return [...(this.aors.get(aor)?.live.values() ?? [])];
  }

  /** The ended dialogs of `aor` still kept for their report, first ended first. */
  ended(aor: string): DialogEntry[] {
    return [...(this.aors.get(aor)?.ended.values() ?? [])];
  }

  /**
   * What the proxy saw, as an update; undefined when no party is a user of ours (or the message cannot be read: a
   * malformed header never reaches the proxy's caller as an exception). `reason` of a terminated request: cancelled,
   * rejected, timeout (an INVITE's final response) or bye.
   */
  record(kind: 'trying' | 'early' | 'confirmed' | 'terminated', request: SipRequest, response?: SipResponse, reason?: string): DialogUpdate | undefined {
    try {
      return this.describe(kind, request, response, reason);
    } catch (err) {
      this.options.logger?.debug({ err, callId: request.callId }, 'dialog state not recorded');
      return undefined;
    }
  }

  /**
   * The proxy's call-state observer (structurally its CallStateObserver): each event recorded and, when it changes
   * something here, handed to `publish`, by default applied here at once. Another `publish` sends updates to every
   * process (this one included), each applying them.
   */
  observer(publish: (update: DialogUpdate) => void = (u) => void this.apply(u)): DialogObserver {
    const send = (u: DialogUpdate | undefined): void => {
      if (u === undefined || !this.changes(u)) return;
      try {
        publish(u);
      } catch (err) {
        this.options.logger?.warn({ err, callId: u.callId }, 'dialog state update not published');
      }
    };
    return {
      // Only what changes something: every process holds the same dialogs, so nobody misses an update left out.
      trying: (invite) => send(this.record('trying', invite)),
      early: (invite, provisional) => send(this.record('early', invite, provisional)),
      confirmed: (invite, ok) => send(this.record('confirmed', invite, ok)),
      terminated: (request, reason, final) => send(this.record('terminated', request, final, reason)),
    };
  }

  /**
   * Applies an update (recorded here or in another process); `only`: to that AOR's dialogs alone (an update is then
   * applied once for each of its `aors`, as the presence service hands it over per resource). Returns the AORs whose
   * dialogs changed: those of the update, and any whose dialogs ran out meanwhile.
   */
  apply(update: DialogUpdate, only?: string): string[] {
    const changed = new Set<string>();
    this.counter++;
    this.expire(update.at, changed);
    const mine = (e: DialogEntry): boolean => only === undefined || e.aor === only;
    switch (update.type) {
      case 'ended':
        for (const e of this.callDialogs(update.callId)) {
          if (mine(e) && e.fromTag === update.fromTag && e.state !== 'confirmed') this.end(e, update.at, update.event, update.code, changed);
        }
        break;
      case 'bye': {
        const [a, b] = update.tags;
        for (const e of this.callDialogs(update.callId)) {
          const matches = (e.fromTag === a && e.toTag === b) || (e.fromTag === b && e.toTag === a);
          if (mine(e) && matches) this.end(e, update.at, dialogLocalTag(e) === update.by ? 'local-bye' : 'remote-bye', undefined, changed);
        }
        break;
      }
      default: {
        const { caller, callee } = update;
        if (caller.aor !== undefined && (only === undefined || caller.aor === only)) this.progress(update, caller.aor, 'initiator', changed);
        if (callee.aor !== undefined && (only === undefined || callee.aor === only)) this.progress(update, callee.aor, 'recipient', changed);
      }
    }
    return [...changed];
  }

  private describe(kind: 'trying' | 'early' | 'confirmed' | 'terminated', request: SipRequest, response: SipResponse | undefined, reason: string | undefined): DialogUpdate | undefined {
    const at = this.options.clock.now();
    const callId = capped(request.callId);
    if (request.method === 'BYE') {
      const aors = this.aorsOf(request.from.uri, request.to.uri);
      if (aors.length === 0) return undefined;
      const by = capped(request.fromTag ?? '');
      return { type: 'bye', at, aors, callId, tags: [by, capped(request.toTag ?? '')], by };
    }
    if (request.method !== 'INVITE') return undefined;
    // The callee as the caller named it: the Request-URI before the location lookup (To when it names no user of ours).
    const calleeUri = this.ours(request.uri) ? request.uri : request.to.uri;
    const aors = this.aorsOf(request.from.uri, calleeUri);
    if (aors.length === 0) return undefined;
    const fromTag = capped(request.fromTag ?? '');
    if (kind === 'terminated') {
      const code = response?.status ?? 500;
      const event = reason === 'cancelled' || reason === 'rejected' || reason === 'timeout' ? reason : 'error';
      return { type: 'ended', at, aors, callId, fromTag, event, code };
    }
    const caller = party(request.from, this.ours(request.from.uri) ? aorOf(request.from.uri) : undefined, contactOf(request));
    const callee = party(request.to, this.ours(calleeUri) ? aorOf(calleeUri) : undefined, response && contactOf(response));
    const toTag = response?.toTag;
    const type = kind === 'early' && toTag === undefined ? 'proceeding' : kind;
    const update: DialogUpdate = { type, at, aors, callId, fromTag, caller, callee };
    if (toTag !== undefined && kind !== 'trying') update.toTag = capped(toTag);
    return update;
  }

  /** The canonical AORs of the URIs that name users of ours, each once. */
  private aorsOf(a: Uri, b: Uri): string[] {
    const out: string[] = [];
    if (this.ours(a)) out.push(aorOf(a));
    if (this.ours(b) && !out.includes(aorOf(b))) out.push(aorOf(b));
    return out;
  }

  private ours(uri: Uri): boolean {
    return uri.type === 'sip' && uri.user !== undefined && this.options.isOurs(uri.host);
  }

  private callDialogs(callId: string): DialogEntry[] {
    return [...(this.byCall.get(callId) ?? [])];
  }

  /** A call's progress for one of its parties: its dialog found (or made) and moved forward, never back. */
  private progress(update: Progress, aor: string, direction: DialogDirection, changed: Set<string>): void {
    const at = this.landing(update, aor, direction);
    if (at === undefined) return;
    let entry = at.entry;
    // A retransmitted provisional response (or one more 180) changes nothing a watcher would see: no NOTIFY for it.
    if (entry !== undefined && !differs(entry, update, direction)) return;
    entry ??= this.create(update, aor, direction, changed);
    Object.assign(entry, advanced(entry, update, direction));
    entry.seq = this.counter;
    changed.add(aor);
    if (update.type !== 'confirmed') return;
    // RFC 4235 §3.7.1: the other forks' early dialogs end when one is confirmed (the proxy cancels their branches).
    for (const other of at.mine) {
      if (other !== entry && other.state !== 'confirmed') this.end(other, update.at, 'cancelled', undefined, changed);
    }
  }

  /**
   * Where a call's progress lands for one party: the dialog with the update's To tag, else the one still waiting for
   * its first tag (trying or proceeding), else a new one (entry undefined); undefined when it adds nothing: a
   * response without a tag to dialogs that have theirs, or a fork's provisional response after another fork
   * answered (that early dialog is over already).
   */
  private landing(update: Progress, aor: string, direction: DialogDirection): { mine: DialogEntry[]; entry?: DialogEntry } | undefined {
    const mine = this.callDialogs(update.callId).filter((e) => e.aor === aor && e.direction === direction && e.fromTag === update.fromTag);
    const toTag = update.toTag;
    const entry = mine.find((e) => e.toTag === toTag) ?? (toTag === undefined ? undefined : mine.find((e) => e.toTag === undefined));
    if (entry === undefined && ((toTag === undefined && mine.length > 0) || mine.some((e) => e.state === 'confirmed'))) return undefined;
    return { mine, entry };
  }

  /**
   * Whether applying `update` here would change what a watcher sees. The observer publishes only such updates (no
   * NOTIFY for a second 180); every process holds the same dialogs, so this one's answer is everyone's.
   */
  changes(update: DialogUpdate): boolean {
    switch (update.type) {
      case 'ended':
        return this.callDialogs(update.callId).some((e) => e.fromTag === update.fromTag && e.state !== 'confirmed');
      case 'bye': {
        const [a, b] = update.tags;
        return this.callDialogs(update.callId).some((e) => (e.fromTag === a && e.toTag === b) || (e.fromTag === b && e.toTag === a));
      }
      default:
        return ([[update.caller, 'initiator'], [update.callee, 'recipient']] as const).some(([p, direction]) => {
          if (p.aor === undefined) return false;
          const at = this.landing(update, p.aor, direction);
          return at !== undefined && (at.entry === undefined || differs(at.entry, update, direction));
        });
    }
  }

  private create(update: Progress, aor: string, direction: DialogDirection, changed: Set<string>): DialogEntry {
    // Bounded: the oldest dialog of the AOR, then the oldest of all, gives way (a stuck one more likely than a live one).
    const existing = this.aors.get(aor);
    if (existing !== undefined && existing.live.size >= this.maxPerAor) this.drop(first(existing.live.values())!, changed);
    if (this.liveOrder.size >= this.maxDialogs) this.drop(first(this.liveOrder)!, changed);
    const entry: DialogEntry = {
      id: dialogId(update.callId, update.fromTag, update.toTag ?? '', direction),
      aor,
      callId: update.callId,
      direction,
      fromTag: update.fromTag,
      toTag: update.toTag,
      state: 'trying',
      createdAt: update.at,
      local: { identity: '' },
      remote: { identity: '' },
      seq: this.counter,
    };
    this.dialogsOf(aor).live.set(entry.id, entry);
    this.liveOrder.add(entry);
    let call = this.byCall.get(entry.callId);
    if (call === undefined) {
      call = new Set();
      this.byCall.set(entry.callId, call);
    }
    call.add(entry);
    return entry;
  }

  /** A dialog ends: out of the live ones, kept among the ended until it has been reported. */
  private end(entry: DialogEntry, at: number, event: DialogEndEvent, code: number | undefined, changed: Set<string>): void {
    if (!this.liveOrder.has(entry)) return;
    this.unlink(entry);
    entry.state = 'terminated';
    entry.event = event;
    if (code !== undefined) entry.code = code;
    entry.endedAt = at;
    entry.seq = this.counter;
    const kept = this.aors.get(entry.aor)?.ended;
    if (kept !== undefined && kept.size >= this.maxPerAor) this.forget(first(kept.values())!);
    if (this.endedOrder.size >= this.maxDialogs) this.forget(first(this.endedOrder)!);
    this.dialogsOf(entry.aor).ended.set(entry.id, entry);
    this.endedOrder.add(entry);
    changed.add(entry.aor);
  }

  private dialogsOf(aor: string): AorDialogs {
    let dialogs = this.aors.get(aor);
    if (dialogs === undefined) {
      dialogs = { live: new Map(), ended: new Map() };
      this.aors.set(aor, dialogs);
    }
    return dialogs;
  }

  /** Dropped for a cap: forgotten without an end (a watcher that saw it is told it is gone). */
  private drop(entry: DialogEntry, changed: Set<string>): void {
    this.droppedCount++;
    changed.add(entry.aor);
    this.options.logger?.debug({ aor: entry.aor, callId: entry.callId }, 'dialog state dropped: too many dialogs');
    this.unlink(entry);
    this.cleanUp(entry.aor);
  }

  /** Out of the live indexes. */
  private unlink(entry: DialogEntry): void {
    this.aors.get(entry.aor)?.live.delete(entry.id);
    this.liveOrder.delete(entry);
    const call = this.byCall.get(entry.callId);
    call?.delete(entry);
    if (call?.size === 0) this.byCall.delete(entry.callId);
  }

  /** An ended dialog whose report time is over. */
  private forget(entry: DialogEntry): void {
    this.aors.get(entry.aor)?.ended.delete(entry.id);
    this.endedOrder.delete(entry);
    this.cleanUp(entry.aor);
  }

  private cleanUp(aor: string): void {
    const dialogs = this.aors.get(aor);
    if (dialogs && dialogs.live.size === 0 && dialogs.ended.size === 0) this.aors.delete(aor);
  }

  /**
   * No timers: every update first forgets ended dialogs reported long enough ago, and ends dialogs older than
   * maxDurationMs (their BYE went elsewhere: no Record-Route, a crash), oldest first, so each costs O(1) when nothing is due.
   */
  private expire(now: number, changed: Set<string>): void {
    for (let e = first(this.endedOrder); e !== undefined && e.endedAt! + this.keepEndedMs <= now; e = first(this.endedOrder)) this.forget(e);
    for (let e = first(this.liveOrder); e !== undefined && e.createdAt + this.maxDurationMs <= now; e = first(this.liveOrder)) {
      this.expiredCount++;
      this.end(e, now, 'timeout', undefined, changed);
    }
  }
}

/** Whether a value another process sent is a DialogUpdate this one can apply (it is checked, not trusted). */
export function isDialogUpdate(value: unknown): value is DialogUpdate {
  if (typeof value !== 'object' || value === null) return false;
  const u = value as Record<string, unknown>;
  if (typeof u.at !== 'number' || typeof u.callId !== 'string' || !Array.isArray(u.aors) || !u.aors.every((a) => typeof a === 'string')) return false;
  const isParty = (p: unknown): boolean => typeof p === 'object' && p !== null && typeof (p as DialogParty).identity === 'string';
  switch (u.type) {
    case 'trying':
    case 'proceeding':
    case 'early':
    case 'confirmed':
      return typeof u.fromTag === 'string' && (u.toTag === undefined || typeof u.toTag === 'string') && isParty(u.caller) && isParty(u.callee);
    case 'ended':
      return typeof u.fromTag === 'string' && typeof u.code === 'number' && ['cancelled', 'rejected', 'timeout', 'error'].includes(u.event as string);
    case 'bye':
      return Array.isArray(u.tags) && u.tags.length === 2 && u.tags.every((t) => typeof t === 'string') && typeof u.by === 'string';
    default:
      return false;
  }
}

function first<T>(items: Iterable<T>): T | undefined {
  for (const item of items) return item;
  return undefined;
}

/** The tag of the dialog's own side: the From tag for the caller, the To tag for the callee. */
export function dialogLocalTag(e: Pick<DialogEntry, 'direction' | 'fromTag' | 'toTag'>): string | undefined {
  return e.direction === 'initiator' ? e.fromTag : e.toTag;
}

/** The other side's tag. */
export function dialogRemoteTag(e: Pick<DialogEntry, 'direction' | 'fromTag' | 'toTag'>): string | undefined {
  return e.direction === 'initiator' ? e.toTag : e.fromTag;
}

type Progress = Extract<DialogUpdate, { caller: DialogParty }>;

/** What a live dialog becomes with a progress update: its first To tag, a later state, what is known of the parties. */
function advanced(entry: DialogEntry, update: Progress, direction: DialogDirection): Pick<DialogEntry, 'toTag' | 'state' | 'local' | 'remote'> {
  const [local, remote] = direction === 'initiator' ? [update.caller, update.callee] : [update.callee, update.caller];
  return {
    toTag: entry.toTag ?? update.toTag,
    state: RANK[update.type] > RANK[entry.state] ? update.type : entry.state,
    local: merged(entry.local, local),
    remote: merged(entry.remote, remote),
  };
}

function differs(entry: DialogEntry, update: Progress, direction: DialogDirection): boolean {
  return fingerprint(advanced(entry, update, direction)) !== fingerprint(entry);
}

/** What a watcher sees of a live dialog, to tell a change from a repetition. */
function fingerprint(e: Pick<DialogEntry, 'toTag' | 'state' | 'local' | 'remote'>): string {
  return [e.state, e.toTag, e.local.identity, e.local.display, e.local.target, e.remote.identity, e.remote.display, e.remote.target].join('\n');
}

/** What a later update knows better (a target once a response has brought one) replaces what was known. */
function merged(known: DialogParty, now: DialogParty): DialogParty {
  return { ...known, ...now, target: now.target ?? known.target };
}

function party(header: NameAddr, aor: string | undefined, target: string | undefined): DialogParty {
  const p: DialogParty = { identity: capped(header.uri.toString()) };
  if (aor !== undefined) p.aor = aor;
  const display = header.displayNameText;
  if (display) p.display = capped(display);
  if (target !== undefined) p.target = capped(target);
  return p;
}

function aorOf(uri: Uri): string {
  return uri.type === 'sip' ? canonicalAor(uri) : uri.toString();
}

function contactOf(message: SipRequest | SipResponse): string | undefined {
  if (!message.headers.has('contact')) return undefined;
  return message.contacts[0]?.uri.toString();
}

/**
 * The longest text kept of a header value: dialogs are held in memory and sent to every process, so their size must
 * not be the sender's to choose.
 */
const MAX_FIELD = 256;

function capped(text: string): string {
  return text.length <= MAX_FIELD ? text : text.slice(0, MAX_FIELD);
}

/**
 * A stable id from what names the dialog (the same in every process that applies the update): 53 bits of a fast
 * non-cryptographic hash (cyrb53), enough for the few dialogs of one AOR's document, and cheap on the call path.
 */
function dialogId(callId: string, fromTag: string, toTag: string, direction: DialogDirection): string {
  const text = `${callId}\n${fromTag}\n${toTag}\n${direction}`;
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}
