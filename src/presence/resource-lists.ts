import { createHash } from 'node:crypto';
import { tryParseUri, type SipRequest } from '../message/index.js';
import { aorOf } from '../registrar/index.js';
import type { BuddyListMember, BuddyListStore, WatcherRulesStore } from '../store/index.js';
import { newTag } from '../util/ids.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { Admission, EventPackage, EventState, StateContext } from './event-package.js';
import { watcherOf } from './notifier.js';
import { basicPidf } from './pidf.js';
import { decideWatcher, type PresenceService } from './presence-service.js';
import type { WatcherDecision } from './subscription.js';

/** What a user's buddy list is called: `sip:<user>-buddies@<domain>` (docs/presence.md). */
export const BUDDY_LIST_SUFFIX = '-buddies';

/** The URI of the buddy list of `username` in `domain`. */
export function buddyListUri(username: string, domain: string): string {
  return aorOf(`${username}${BUDDY_LIST_SUFFIX}`, domain);
}

/** Whose buddy list `uri` would be by the naming convention (whether that user has one is the store's to say). */
export function buddyListOwner(uri: string): { username: string; domain: string; aor: string } | undefined {
  const u = tryParseUri(uri);
  if (u?.type !== 'sip' || u.user === undefined) return undefined;
  const user = u.userUnescaped ?? u.user;
  if (user.length <= BUDDY_LIST_SUFFIX.length || !user.endsWith(BUDDY_LIST_SUFFIX)) return undefined;
  const username = user.slice(0, -BUDDY_LIST_SUFFIX.length);
  const domain = u.host.toLowerCase();
  return { username, domain, aor: aorOf(username, domain) };
}

export interface ResourceListsOptions {
  lists: Pick<BuddyListStore, 'get'>;
  /** The members' rules about their watchers: the owner sees each member as that member allows. */
  watcherRules?: Pick<WatcherRulesStore, 'get'>;
  /**
   * Whether a domain is one of ours. Members elsewhere would need a back-end subscription of our own to their
   * server, which is not made yet: they are shown pending. Default: every domain is ours.
   */
  isServedDomain?: (host: string) => boolean;
  /**
   * Whether a user exists: the list URI of a user without a stored list is then an empty list (a phone set up before
   * its first buddy sees them arrive) instead of an unknown presentity.
   */
  hasUser?: (username: string, domain: string) => Promise<boolean>;
  logger?: Logger;
}

/** How one member is shown to the owner in one NOTIFY (RFC 4662 §5.2 instance). */
interface MemberView {
  member: BuddyListMember;
  decision: WatcherDecision | 'foreign';
  /** The member's PIDF when the instance is active. */
  document?: string;
}

/** What a subscription to a list remembers between its NOTIFYs (RFC 4662 partial state needs a past). */
interface ListWatch {
  list: string;
  owner: string;
  version: number;
  members: Set<string>;
  /** Members that changed since the last NOTIFY. */
  dirty: Set<string>;
  /** The next NOTIFY carries the whole list (it was edited). */
  full: boolean;
  /** How each member was last shown: a change of the member's rules matters only if it changes this. */
  shown: Map<string, WatcherDecision | 'foreign'>;
  /** Still in `watches`: its subscription has not ended. */
  kept: boolean;
}

const RLMI_NS = 'urn:ietf:params:xml:ns:rlmi';

/**
 * A resource-list server (RFC 4662) for users' buddy lists, as the `presence` package: a SUBSCRIBE with `Supported:
 * eventlist` to a user's list URI, from that user, is one subscription to every member; its NOTIFYs are
 * multipart/related bodies of an RLMI document and one PIDF document per member shown, the full list after a
 * SUBSCRIBE, refresh or list edit, else only the members that changed. Any other resource is plain presence.
 */
export class ResourceLists {
  /** The `presence` package with lists in it, to plug into PresenceService (`packages`). */
  readonly package: EventPackage;
  private readonly watches = new Map<string, ListWatch>();
  private readonly byMember = new Map<string, Set<ListWatch>>();
  private readonly logger: Logger;
  private listening = false;
  /** Set while this server tells the notifier of list changes: those changes are its own, not members'. */
  private relaying = false;

  constructor(
    private readonly service: PresenceService,
    private readonly options: ResourceListsOptions,
  ) {
    this.logger = options.logger ?? silentLogger();
    const rules = options.watcherRules;
    this.package = {
      event: 'presence',
      contentType: 'application/pidf+xml',
      publishable: true,
      defaultExpires: 3600,
      admit: (request, resource) => this.admit(request, resource),
      state: (resource, context) => this.state(resource, context),
      ended: (subscription) => this.forget(subscription),
      authorize: async (watcher, resource) => {
        const list = await this.listOf(resource);
        if (list) return watcher === list.owner ? 'allow' : 'block';
        return decideWatcher(rules, watcher, resource);
      },
      politeState: (resource) => ({ contentType: 'application/pidf+xml', body: basicPidf(resource, false) }),
    };
  }

  /** Subscriptions to lists this process holds (each forgotten when its subscription ends). */
  get size(): number {
    return this.watches.size;
  }

  /** The buddy list of `owner` (an AOR) was edited: its subscriptions get the whole list again (paced). */
  listChanged(owner: string): void {
    const o = tryParseUri(owner);
    if (o?.type !== 'sip' || o.user === undefined) return;
    const list = buddyListUri(o.userUnescaped ?? o.user, o.host);
    for (const w of this.watches.values()) if (w.list === list) w.full = true;
    this.relay([list]);
  }

  /** The list `resource` names and its owner, or undefined when it is no list (a presentity). */
  private async listOf(resource: string): Promise<{ owner: string; members: BuddyListMember[] } | undefined> {
    const owner = buddyListOwner(resource);
    if (owner === undefined) return undefined;
    const record = await this.options.lists.get(owner.username, owner.domain);
    if (record) return { owner: owner.aor, members: record.members };
    const hasUser = this.options.hasUser;
    // A user whose own name ends in -buddies keeps their presence: only a list URI nobody has as a user is a list.
    if (hasUser && (await hasUser(owner.username, owner.domain)) && !(await hasUser(`${owner.username}${BUDDY_LIST_SUFFIX}`, owner.domain))) return { owner: owner.aor, members: [] };
    return undefined;
  }

  private async admit(request: SipRequest, resource: string): Promise<Admission> {
    this.listen();
    const list = await this.listOf(resource);
    if (list === undefined) return {};
    // A buddy list says whom its owner watches: nobody else's business.
    if (watcherOf(request) !== list.owner) return { refuse: { status: 403, reason: 'Forbidden - only the owner may subscribe to a buddy list' } };
    // RFC 4662 §4.1: without eventlist the subscriber could not read the multipart NOTIFYs.
    if (!request.headers.list('supported').some((t) => t.toLowerCase() === 'eventlist')) {
      return { refuse: { status: 421, reason: 'Extension Required', headers: [['Require', 'eventlist']] } };
    }
    const accept = request.headers.list('accept');
    if (accept.length > 0 && !accept.some((a) => a.split(';')[0]!.trim().toLowerCase() === 'multipart/related')) {
      return { refuse: { status: 406, headers: [['Accept', 'multipart/related, application/rlmi+xml, application/pidf+xml']] } };
    }
    return { headers: [['Require', 'eventlist']] };
  }

  private async state(resource: string, context: StateContext | undefined): Promise<EventState> {
    this.listen();
    const owner = buddyListOwner(resource);
    if (owner === undefined) return this.service.presenceOf(resource);
    // Taken before any await: the subscription may end (ended()) while this NOTIFY is being made, and its memory
    // must not come back after that.
    const key = context?.subscription;
    let watch = key === undefined ? undefined : this.watches.get(key);
    if (watch === undefined) {
      watch = { list: resource, owner: owner.aor, version: 0, members: new Set(), dirty: new Set(), full: true, shown: new Map(), kept: key !== undefined };
      if (key !== undefined) this.watches.set(key, watch);
    }
    const list = await this.listOf(resource);
    if (list === undefined) {
      if (key !== undefined) this.forget(key);
      return this.service.presenceOf(resource);
    }
    this.setMembers(watch, list.members);
    const full = context === undefined || context.full || watch.full;
    const taken = watch.dirty;
    watch.dirty = new Set();
    watch.full = false;
    try {
      const shown = full ? list.members : list.members.filter((m) => taken.has(m.uri));
      const views = await Promise.all(shown.map((m) => this.view(watch, m)));
      // After the last await: versions then count up in the order the NOTIFYs leave.
      const version = watch.version++;
      for (const v of views) watch.shown.set(v.member.uri, v.decision);
      return rlmiMultipart(resource, version, full, views);
    } catch (e) {
      // Nothing was sent: what changed is still to be told.
      for (const m of taken) watch.dirty.add(m);
      if (full) watch.full = true;
      throw e;
    }
  }

  /** How the owner sees `member`: as the member's rules for the owner say, or pending when it is not ours. */
  private async view(watch: ListWatch, member: BuddyListMember): Promise<MemberView> {
    const decision = await this.decision(watch.owner, member.uri);
    if (decision === 'allow') return { member, decision, document: (await this.service.presenceOf(member.uri)).body };
    if (decision === 'polite-block') return { member, decision, document: basicPidf(member.uri, false) };
    return { member, decision };
  }

  private async decision(owner: string, member: string): Promise<WatcherDecision | 'foreign'> {
    const uri = tryParseUri(member);
    const isOurs = this.options.isServedDomain;
    if (isOurs && (uri?.type !== 'sip' || !isOurs(uri.host.toLowerCase()))) return 'foreign';
    return decideWatcher(this.options.watcherRules, owner, member);
  }

  /** Members' changes reach the lists they are in; made on first use, once the service has its notifier. */
  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.service.notifier.onChange((event, resource) => {
      if (this.relaying) return;
      // Only members the owner sees: a pending, blocked, politely blocked or foreign one shows nothing new.
      if (event === 'presence') this.memberChanged(resource, (w) => (w.shown.get(resource) ?? 'allow') === 'allow');
      // Watchers of a member came, went or were decided about: its rules may have changed for some owners.
      else if (event === 'presence.winfo' && this.byMember.has(resource)) void this.rulesMayHaveChanged(resource);
    });
  }

  private memberChanged(member: string, affects: (w: ListWatch) => boolean): void {
    const lists = new Set<string>();
    for (const w of this.byMember.get(member) ?? []) {
      if (!affects(w)) continue;
      w.dirty.add(member);
      lists.add(w.list);
    }
    this.relay(lists);
  }

  private async rulesMayHaveChanged(member: string): Promise<void> {
    const changed = new Set<ListWatch>();
    const decided = new Map<string, WatcherDecision | 'foreign'>();
    try {
      for (const w of [...(this.byMember.get(member) ?? [])]) {
        const was = w.shown.get(member);
        if (was === undefined) continue;
        if (!decided.has(w.owner)) decided.set(w.owner, await this.decision(w.owner, member));
        if (was !== decided.get(w.owner)) changed.add(w);
      }
    } catch (e) {
      this.logger.warn({ err: e, member }, 'watcher rules unavailable; buddy lists told at their next change');
      return;
    }
    this.memberChanged(member, (w) => changed.has(w));
  }

  private relay(lists: Iterable<string>): void {
    if (this.relaying) return;
    this.relaying = true;
    try {
      for (const list of lists) this.service.notifier.changed('presence', list);
    } finally {
      this.relaying = false;
    }
  }

  private setMembers(watch: ListWatch, members: readonly BuddyListMember[]): void {
    const next = new Set(members.map((m) => m.uri));
    for (const m of watch.members) {
      if (next.has(m)) continue;
      this.unindex(watch, m);
      watch.shown.delete(m);
    }
    // Only a watch still kept is indexed: a NOTIFY made for a subscription that has ended must not leave it behind.
    if (watch.kept) {
      for (const m of next) {
        let set = this.byMember.get(m);
        if (!set) this.byMember.set(m, (set = new Set()));
        set.add(watch);
      }
    }
    watch.members = next;
  }

  private unindex(watch: ListWatch, member: string): void {
    const set = this.byMember.get(member);
    set?.delete(watch);
    if (set?.size === 0) this.byMember.delete(member);
  }

  private forget(subscription: string): void {
    const watch = this.watches.get(subscription);
    if (watch === undefined) return;
    this.watches.delete(subscription);
    watch.kept = false;
    for (const m of watch.members) this.unindex(watch, m);
  }
}

/**
 * RFC 4662 §5: a multipart/related body (RFC 2387) whose root is the RLMI document of the list and whose other parts
 * are the PIDF documents of the members' active instances, each named by its Content-ID in the RLMI `cid`.
 */
function rlmiMultipart(list: string, version: number, fullState: boolean, views: readonly MemberView[]): EventState {
  const host = /@([^;>]+)/.exec(list)?.[1] ?? 'sipway';
  const rlmiCid = `${newTag()}@${host}`;
  const parts: Array<{ cid: string; type: string; body: string }> = [];
  const resources = views.map(({ member, decision, document }) => {
    const id = instanceId(member.uri);
    const lines = [`  <resource uri="${esc(member.uri)}">`];
    if (member.name !== undefined) lines.push(`    <name>${esc(member.name)}</name>`);
    if (document !== undefined) {
      const cid = `${newTag()}@${host}`;
      parts.push({ cid, type: 'application/pidf+xml;charset="UTF-8"', body: document });
      lines.push(`    <instance id="${id}" state="active" cid="${esc(cid)}"/>`);
    } else if (decision === 'block') lines.push(`    <instance id="${id}" state="terminated" reason="rejected"/>`);
    else lines.push(`    <instance id="${id}" state="pending"/>`);
    lines.push('  </resource>');
    return lines.join('\r\n');
  });
  const rlmi = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<list xmlns="${RLMI_NS}" uri="${esc(list)}" version="${version}" fullState="${fullState}">`,
    ...resources,
    '</list>',
    '',
  ].join('\r\n');
  const boundary = `sipway-rls-${newTag()}${newTag()}`;
  const body = [{ cid: rlmiCid, type: 'application/rlmi+xml;charset="UTF-8"', body: rlmi }, ...parts]
    .map((p) => `--${boundary}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <${p.cid}>\r\nContent-Type: ${p.type}\r\n\r\n${p.body.replace(/(\r\n)?$/, '\r\n')}`)
    .join('');
  return {
    contentType: `multipart/related;type="application/rlmi+xml";start="<${rlmiCid}>";boundary="${boundary}"`,
    body: `${body}--${boundary}--\r\n`,
    // RFC 4662 §5.2: list NOTIFYs require the extension the subscriber said it supports.
    headers: [['Require', 'eventlist']],
  };
}

/** The same id for a member in every NOTIFY: the subscriber tracks instances by it (RFC 4662 §5.2). */
function instanceId(uri: string): string {
  return createHash('sha256').update(uri).digest('hex').slice(0, 10);
}

function esc(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
