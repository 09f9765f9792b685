import { randomBytes } from 'node:crypto';
import { createResponse, type SipRequest, type SipResponse } from '../message/index.js';
import { MemoryPresenceStateStore, type PresenceStateStore, type StoredPublication } from '../store/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { EventPackage } from './event-package.js';
import { eventName, resourceOf } from './notifier.js';

/** One publication of a resource's state (RFC 3903 §2): its entity tag, document and expiry. */
export interface Publication {
  etag: string;
  contentType: string;
  body: string;
  /** When it was last published or modified (composition: newest wins). */
  at: number;
}

export interface PublicationsOptions {
  clock: Clock;
  /** Where publications are kept: shared by the workers (and nodes) that compose the same presentities. */
  store?: PresenceStateStore;
  /** Shorter publications are refused 423 (RFC 3903 §6 step 5), seconds. */
  minExpires?: number;
  maxExpires?: number;
  defaultExpires?: number;
  /** How often publications expired while no process of ours had their timer (a restart) are swept, ms. */
  sweepIntervalMs?: number;
  logger?: Logger;
  /** The state of (event, resource) changed: a publication came, changed or went (`removed`: its publisher removed it). */
  changed: (event: string, resource: string, removed?: boolean) => void;
}

/**
 * The event state compositor's front door (RFC 3903 §6): PUBLISH with a document makes a publication and its entity
 * tag; with SIP-If-Match it refreshes (no body), modifies (a body) or removes (Expires 0) that one; an unknown tag is
 * 412; an event no package publishes is 489. Publications live in the store, so any worker may take the next PUBLISH
 * of a tag; the store replaces a tag atomically, so a storm of PUBLISHes for one tag leaves one version (the others
 * get 412), and within a process the PUBLISHes of one resource are handled one at a time, to the end. Each
 * publication expires by a timer in the process that took it, and by a periodic sweep after a restart.
 */
export class Publications {
  private readonly store: PresenceStateStore;
  private readonly minExpires: number;
  private readonly maxExpires: number;
  private readonly defaultExpires: number;
  /** Expiry timers of the publications this process made, by entity tag. */
  private readonly timers = new Map<string, TimerHandle>();
  /** The tail of each resource's queue of PUBLISHes being handled. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private sweeper: TimerHandle | undefined;
  private readonly logger: Logger;
  private closed = false;

  constructor(
    private readonly options: PublicationsOptions,
    private readonly packages: ReadonlyMap<string, EventPackage>,
  ) {
    this.store = options.store ?? new MemoryPresenceStateStore();
    this.minExpires = options.minExpires ?? 60;
    this.maxExpires = options.maxExpires ?? 3600;
    this.defaultExpires = options.defaultExpires ?? 3600;
    this.logger = options.logger ?? silentLogger();
    if (options.store !== undefined) this.scheduleSweep(options.sweepIntervalMs ?? 30_000);
  }

  /** The live publications of `event` for `resource`, oldest first. */
  async of(event: string, resource: string): Promise<Publication[]> {
    const list = await this.store.publications(event, resource, this.options.clock.now());
    return list.map(({ etag, contentType, body, at }) => ({ etag, contentType, body, at }));
  }

  /** Publications whose expiry timer this process holds. */
  get size(): number {
    return this.timers.size;
  }

  /** Answers a PUBLISH; a store that fails is a 500 with a reason. */
  publish(request: SipRequest): Promise<SipResponse> {
    const k = `${eventName(request)}\n${resourceOf(request)}`;
    const run = (this.queues.get(k) ?? Promise.resolve()).then(() => this.handle(request));
    const answered = run.catch((err: unknown) => {
      this.logger.warn({ err, resource: resourceOf(request) }, 'publication store failed; PUBLISH answered 500');
      return createResponse(request, 500, { reason: 'Server Internal Error - the publication could not be stored' });
    });
    this.queues.set(k, answered);
    void answered.then(() => {
      if (this.queues.get(k) === answered) this.queues.delete(k);
    });
    return answered;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.sweeper?.cancel();
  }

  private async handle(request: SipRequest): Promise<SipResponse> {
    const event = eventName(request);
    const pkg = event === undefined ? undefined : this.packages.get(event);
    if (pkg === undefined || !pkg.publishable) {
      return createResponse(request, 489, { headers: [['Allow-Events', [...this.packages.values()].filter((p) => p.publishable).map((p) => p.event).join(', ')]] });
    }
    const asked = request.headers.get('expires');
    let seconds = asked === undefined ? this.defaultExpires : Number(asked.trim());
    if (!Number.isInteger(seconds) || seconds < 0) return createResponse(request, 400, { reason: 'Bad Request - Expires is not a number of seconds' });
    if (seconds > 0 && seconds < this.minExpires) return createResponse(request, 423, { headers: [['Min-Expires', String(this.minExpires)]] });
    seconds = Math.min(seconds, this.maxExpires);
    const resource = resourceOf(request);
    const ifMatch = request.headers.get('sip-if-match')?.trim();
    const body = request.body.length > 0 ? request.body.toString('utf8') : undefined;
    const contentType = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (body !== undefined && contentType !== pkg.contentType) {
      return createResponse(request, 415, { headers: [['Accept', pkg.contentType]] });
    }
    const now = this.options.clock.now();
    let previous: StoredPublication | undefined;
    if (ifMatch === undefined) {
      // §6 step 4: an initial publication must carry a document.
      if (body === undefined) return createResponse(request, 400, { reason: 'Bad Request - an initial PUBLISH needs a body' });
      if (seconds === 0) return createResponse(request, 400, { reason: 'Bad Request - an initial PUBLISH with Expires 0' });
    } else {
      previous = (await this.store.publications(pkg.event, resource, now)).find((p) => p.etag === ifMatch);
      if (previous === undefined) return createResponse(request, 412);
      if (seconds === 0) {
        this.stopTimer(ifMatch);
        if (!(await this.store.removePublication(pkg.event, resource, ifMatch))) return createResponse(request, 412);
        this.options.changed(pkg.event, resource, true);
        // §6 step 8: every 2xx carries a SIP-ETag (Twinkle warns without one); here the tag that was removed.
        return createResponse(request, 200, { headers: [['SIP-ETag', ifMatch], ['Expires', '0']] });
      }
    }
    // §6 step 6/7: every successful PUBLISH gets a fresh entity tag; a refresh keeps the document.
    const etag = randomBytes(9).toString('base64url');
    const next: StoredPublication = {
      event: pkg.event,
      resource,
      etag,
      contentType: pkg.contentType,
      body: body ?? previous!.body,
      at: body !== undefined || previous === undefined ? now : previous.at,
      expiresAt: now + seconds * 1000,
    };
    // Another worker may have taken the same tag meanwhile: the store says who won.
    if (!(await this.store.putPublication(next, ifMatch))) return createResponse(request, 412);
    if (ifMatch !== undefined) this.stopTimer(ifMatch);
    if (!this.closed) this.timers.set(etag, this.options.clock.setTimer(seconds * 1000, () => void this.expire(pkg.event, resource, etag)));
    if (body !== undefined) this.options.changed(pkg.event, resource);
    return createResponse(request, 200, { headers: [['SIP-ETag', etag], ['Expires', String(seconds)]] });
  }

  private stopTimer(etag: string): void {
    this.timers.get(etag)?.cancel();
    this.timers.delete(etag);
  }

  private async expire(event: string, resource: string, etag: string): Promise<void> {
    this.timers.delete(etag);
    try {
      // False when another worker refreshed or removed it meanwhile: nothing changed here.
      if (await this.store.removePublication(event, resource, etag)) this.options.changed(event, resource);
    } catch (err) {
      this.logger.warn({ err, resource }, 'expired publication not removed; the sweep tries again');
    }
  }

  private scheduleSweep(intervalMs: number): void {
    this.sweeper = this.options.clock.setTimer(intervalMs, () => {
      if (this.closed) return;
      void this.store.removeExpiredPublications(this.options.clock.now()).then(
        (changed) => {
          for (const c of changed) this.options.changed(c.event, c.resource);
        },
        (err: unknown) => this.logger.warn({ err }, 'publication sweep failed'),
      );
      this.scheduleSweep(intervalMs);
    });
  }
}
