import { randomBytes } from 'node:crypto';
import { createResponse, type SipRequest, type SipResponse } from '../message/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
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
  /** Shorter publications are refused 423 (RFC 3903 §6 step 5), seconds. */
  minExpires?: number;
  maxExpires?: number;
  defaultExpires?: number;
  /** The state of (event, resource) changed: a publication came, changed or went. */
  changed: (event: string, resource: string) => void;
}

interface Entry extends Publication {
  timer: TimerHandle;
}

/**
 * The event state compositor's front door (RFC 3903 §6): PUBLISH with a document makes a publication and its entity
 * tag; with SIP-If-Match it refreshes (no body), modifies (a body) or removes (Expires 0) that one; an unknown tag is
 * 412; an event no package publishes is 489. Every publication expires on its own. Requests are handled one at a
 * time, to the end, so that a storm of PUBLISHes for one tag never leaves two versions behind.
 */
export class Publications {
  private readonly entries = new Map<string, Map<string, Entry>>();
  private readonly minExpires: number;
  private readonly maxExpires: number;
  private readonly defaultExpires: number;

  constructor(
    private readonly options: PublicationsOptions,
    private readonly packages: ReadonlyMap<string, EventPackage>,
  ) {
    this.minExpires = options.minExpires ?? 60;
    this.maxExpires = options.maxExpires ?? 3600;
    this.defaultExpires = options.defaultExpires ?? 3600;
  }

  /** The publications of `event` for `resource`, oldest first. */
  of(event: string, resource: string): Publication[] {
    const map = this.entries.get(`${event}\n${resource}`);
    if (map === undefined) return [];
    return [...map.values()].sort((a, b) => a.at - b.at).map(({ etag, contentType, body, at }) => ({ etag, contentType, body, at }));
  }

  get size(): number {
    let n = 0;
    for (const m of this.entries.values()) n += m.size;
    return n;
  }

  /** Answers a PUBLISH. */
  publish(request: SipRequest): SipResponse {
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
    const k = `${pkg.event}\n${resource}`;
    const map = this.entries.get(k) ?? new Map<string, Entry>();
    const ifMatch = request.headers.get('sip-if-match')?.trim();
    const body = request.body.length > 0 ? request.body.toString('utf8') : undefined;
    const contentType = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (body !== undefined && contentType !== pkg.contentType) {
      return createResponse(request, 415, { headers: [['Accept', pkg.contentType]] });
    }
    let entry: Entry | undefined;
    if (ifMatch === undefined) {
      // §6 step 4: an initial publication must carry a document.
      if (body === undefined) return createResponse(request, 400, { reason: 'Bad Request - an initial PUBLISH needs a body' });
      if (seconds === 0) return createResponse(request, 400, { reason: 'Bad Request - an initial PUBLISH with Expires 0' });
    } else {
      entry = map.get(ifMatch);
      if (entry === undefined) return createResponse(request, 412);
      entry.timer.cancel();
      map.delete(ifMatch);
      if (seconds === 0) {
        this.store(k, map);
        this.options.changed(pkg.event, resource);
        return createResponse(request, 200, { headers: [['Expires', '0']] });
      }
    }
    // §6 step 6/7: every successful PUBLISH gets a fresh entity tag; a refresh keeps the document.
    const etag = randomBytes(9).toString('base64url');
    const next: Entry = {
      etag,
      contentType: pkg.contentType,
      body: body ?? entry!.body,
      at: body !== undefined || entry === undefined ? this.options.clock.now() : entry.at,
      timer: this.options.clock.setTimer(seconds * 1000, () => this.expire(k, etag, pkg.event, resource)),
    };
    map.set(etag, next);
    this.store(k, map);
    if (body !== undefined) this.options.changed(pkg.event, resource);
    return createResponse(request, 200, { headers: [['SIP-ETag', etag], ['Expires', String(seconds)]] });
  }

  close(): void {
    for (const map of this.entries.values()) for (const e of map.values()) e.timer.cancel();
    this.entries.clear();
  }

  private expire(k: string, etag: string, event: string, resource: string): void {
    const map = this.entries.get(k);
    if (!map?.delete(etag)) return;
    this.store(k, map);
    this.options.changed(event, resource);
  }

  private store(k: string, map: Map<string, Entry>): void {
    if (map.size === 0) this.entries.delete(k);
    else this.entries.set(k, map);
  }
}
