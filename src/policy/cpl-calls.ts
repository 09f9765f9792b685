/**
 * Per-user CPL scripts (RFC 3880) on calls: the bridge between the interpreter, which knows nothing of SIP
 * transactions, and the request context. A proxy node relays and waits for the outcome; when every branch has
 * failed, the relay's own failure hook holds the best response while the script decides what comes next (another
 * proxy node, a redirect, a reject, or nothing: the best response goes upstream).
 */
import { tryParseUri, type SipRequest, type SipResponse } from '../message/index.js';
import type { CplStore } from '../store/index.js';
import { runCpl, type CplRunOptions } from './cpl/interpreter.js';
import { parseMailto, type CplMailer } from './cpl/mail.js';
import { parseCpl, type CplLimits } from './cpl/parse.js';
import type { CplEnvironment, CplLocation, CplLookupResult, CplOutcome, CplProxyResult, CplRequest, CplScript, ProxyOrdering } from './cpl/types.js';
import type { FailureContext, RequestContext, ResponseContext, Target, TargetSpec } from './types.js';

export interface CallScriptOptions {
  /** Where users' scripts are kept. */
  scripts: Pick<CplStore, 'get'>;
  /** Whether a host is one of the served domains (case-insensitive). */
  isServedDomain(host: string): boolean;
  /** Limits of the stored scripts' validation (as when they were stored). */
  limits?: Partial<CplLimits>;
  run?: CplRunOptions;
  /** Where `mail` nodes go; without it they are logged. */
  mail?: CplMailer;
  now?: () => Date;
}

/** How many 3xx responses a proxy node with recurse="yes" follows (RFC 3880 §6.1; RFC 3261 §16.5 asks for a bound). */
const MAX_RECURSIONS = 5;

/**
 * The caller's outgoing script, for an INVITE from a user of ours who authenticated (an unverified From must not
 * choose whose script runs). Returns true when the script handled the call; false when it ended without a signalling
 * action and the rest of the policy routes the call as usual.
 */
export async function outgoingScript(ctx: RequestContext, options: CallScriptOptions): Promise<boolean> {
  if (ctx.method !== 'INVITE' || ctx.inDialog) return false;
  const { user, host } = ctx.from;
  if (user === undefined || host === undefined || !options.isServedDomain(host) || ctx.authenticatedUser !== user) return false;
  return runScript(ctx, options, { username: user, domain: host.toLowerCase() }, 'outgoing');
}

/**
 * The callee's incoming script, for an INVITE to a user of a served domain (the Request-URI). Returns true when the
 * script handled the call; false when it ended without a signalling action.
 */
export async function incomingScript(ctx: RequestContext, options: CallScriptOptions): Promise<boolean> {
  if (ctx.method !== 'INVITE' || ctx.inDialog) return false;
  const uri = tryParseUri(ctx.ruri);
  if (uri?.type !== 'sip' || uri.userUnescaped === undefined || !options.isServedDomain(uri.host)) return false;
  return runScript(ctx, options, { username: uri.userUnescaped, domain: uri.host.toLowerCase() }, 'incoming');
}

async function runScript(
  ctx: RequestContext,
  options: CallScriptOptions,
  owner: { username: string; domain: string },
  direction: 'incoming' | 'outgoing',
): Promise<boolean> {
  const script = await loadScript(ctx, options, owner);
  if (!script?.[direction]) return false;
  const call = new ScriptedCall(ctx, options, `${owner.username}@${owner.domain}`);
  let outcome: CplOutcome;
  try {
    outcome = await runCpl(script, direction, call, options.run);
  } catch (err) {
    if (!call.relayed) throw err;
    // The script broke with the call in a failure hook (or already answered): the caller still gets an answer.
    ctx.log('CPL script failed', { owner: call.owner, err });
    call.finish({ action: 'reject', status: 500, reason: 'Server Internal Error - CPL script failed' });
    return true;
  }
  if (outcome.action === 'default' && outcome.error !== undefined) ctx.log('CPL script stopped', { owner: call.owner, error: outcome.error });
  return call.finish(outcome);
}

async function loadScript(ctx: RequestContext, options: CallScriptOptions, owner: { username: string; domain: string }): Promise<CplScript | undefined> {
  const record = await options.scripts.get(owner.username, owner.domain);
  if (!record) return undefined;
  const parsed = parseCpl(record.script, options.limits);
  if (parsed.ok) return parsed.script;
  // Stored by an older sipway or edited in the database: the call goes on as without a script.
  ctx.log('stored CPL script does not validate; ignored', { owner: `${owner.username}@${owner.domain}`, error: parsed.errors[0]?.message });
  return undefined;
}

/** A failure hook on hold: the best response waits while the script runs on. */
interface HeldFailure {
  ctx: FailureContext;
  release: () => void;
}

/** One call under a script: the CplEnvironment the interpreter acts through. */
class ScriptedCall implements CplEnvironment {
  readonly request: CplRequest;
  /** A proxy node has relayed the call: from then on, answers go through the relay's hooks. */
  relayed = false;
  /** The final response has gone upstream: nothing the script does any more can change the call. */
  private over = false;
  private held: HeldFailure | undefined;
  /** Resolves the proxy node waiting for its outcome. */
  private waiting: ((result: CplProxyResult) => void) | undefined;
  /** Final responses of the current proxy node's branches (status, 3xx Contacts). */
  private finals: Array<{ status: number; contacts: string[] }> = [];
  private recursions = 0;
  /** Bindings found by lookup nodes, by URI: proxying to them keeps their Path and flow. */
  private readonly found = new Map<string, Target>();

  constructor(
    private readonly ctx: RequestContext,
    private readonly options: CallScriptOptions,
    readonly owner: string,
  ) {
    this.request = cplRequest(ctx, options.isServedDomain);
  }

  now(): Date {
    return this.options.now?.() ?? new Date();
  }

  async lookup(source: string): Promise<CplLookupResult> {
    if (source !== 'registration') {
      this.ctx.log('CPL lookup source not supported', { owner: this.owner, source });
      return { result: 'failure', locations: [] };
    }
    const found = await this.ctx.lookup(`sip:${this.owner}`);
    if (!found.found) return { result: found.status === 404 || found.status === 480 ? 'notfound' : 'failure', locations: [] };
    const locations: CplLocation[] = [];
    for (const t of found.targets) {
      const uri = t.uri.toString();
      this.found.set(uri, t);
      locations.push({ uri, q: t.q });
    }
    return { result: 'success', locations };
  }

  async proxy(locations: CplLocation[], opts: { timeout: number; recurse: boolean; ordering: ProxyOrdering }): Promise<CplProxyResult> {
    if (this.over) return { outcome: 'success' };
    let targets = await this.targetsOf(locations);
    if (opts.ordering === 'first-only') targets = targets.slice(0, 1);
    if (targets.length === 0) return { outcome: 'failure', status: 480 };
    const fork = opts.ordering === 'parallel' ? 'parallel' : 'serial';
    const timeout = Math.max(1, Math.round(opts.timeout * 1000));
    const result = new Promise<CplProxyResult>((resolve) => (this.waiting = resolve));
    this.finals = [];
    this.recursions = opts.recurse ? 0 : MAX_RECURSIONS;
    if (this.held) {
      this.held.ctx.relay(targets, { fork, timeout });
      this.releaseHeld();
    } else {
      this.relayed = true;
      await this.ctx.relay(targets, {
        fork,
        timeout,
        onResponse: (r) => this.onResponse(r),
        onFailure: (f) => this.onFailure(f),
        onFinal: (status) => this.onFinal(status),
      });
    }
    return result;
  }

  log(name: string | undefined, comment: string | undefined): void {
    this.ctx.log('CPL log', { owner: this.owner, name, comment });
  }

  mail(url: string): void {
    const { from, to } = this.ctx;
    const message = parseMailto(url, {
      subject: `Call from ${from.uri} to ${to.uri}`,
      body: `A call from ${from.uri} to ${to.uri} (Call-ID ${this.ctx.callId}) reached a mail node of the CPL script of ${this.owner}.\r\n`,
    });
    if (!message) return this.ctx.log('CPL mail URL has no recipient; not sent', { owner: this.owner, url });
    if (this.options.mail) this.options.mail(message);
    else this.ctx.log('CPL mail', { owner: this.owner, to: message.to, cc: message.cc, subject: message.subject });
  }

  /**
   * Carries out how the script ended; returns false when it ended without any signalling action (the policy goes
   * on as without a script).
   */
  finish(outcome: CplOutcome): boolean {
    const answer = finalAnswer(outcome);
    if (this.held) {
      if (answer) this.held.ctx.reply(answer.status, answer.reason, answer.headers);
      this.releaseHeld();
      return true;
    }
    if (this.relayed) return true;
    if (answer) {
      this.ctx.reply(answer.status, answer.reason, answer.headers);
      return true;
    }
    if (outcome.action === 'proxied') {
      // Every proxy node found nobody to ring, and the script ended there.
      this.ctx.reply(outcome.status ?? 480);
      return true;
    }
    return false;
  }

  /** Locations as relay targets: users of served domains through the location service, other URIs as they are. */
  private async targetsOf(locations: CplLocation[]): Promise<TargetSpec[]> {
    const targets: TargetSpec[] = [];
    for (const l of locations) {
      const known = this.found.get(l.uri);
      if (known) {
        targets.push(known);
        continue;
      }
      const uri = tryParseUri(l.uri);
      if (uri?.type === 'sip' && uri.user !== undefined && this.options.isServedDomain(uri.host)) {
        const found = await this.ctx.lookup(l.uri);
        if (found.found) targets.push(...found.targets);
      } else if (uri?.type === 'sip' || uri?.type === 'tel') targets.push(l.uri);
      else this.ctx.log('CPL location is not a SIP or tel URI; skipped', { owner: this.owner, uri: l.uri });
    }
    return targets;
  }

  private onResponse(r: ResponseContext): void {
    if (r.status >= 200 && r.status < 300) this.settle({ outcome: 'success', status: r.status });
    else if (r.status >= 300) this.finals.push({ status: r.status, contacts: r.status < 400 ? contactsOf(r.response) : [] });
  }

  private onFailure(f: FailureContext): Promise<void> | undefined {
    const result = classify(f.status, this.finals);
    if (result.outcome === 'redirection' && this.recursions < MAX_RECURSIONS && result.redirectContacts!.length > 0) {
      // recurse="yes": the server follows the redirection itself.
      this.recursions++;
      this.finals = [];
      f.relay(result.redirectContacts!);
      return undefined;
    }
    const held = new Promise<void>((release) => (this.held = { ctx: f, release }));
    this.settle(result);
    return held;
  }

  private onFinal(status: number): void {
    this.over = true;
    // Answered without the script's say (a CANCEL, a 6xx): whatever it still does is moot.
    this.settle(status < 300 ? { outcome: 'success', status } : classify(status, this.finals));
  }

  private settle(result: CplProxyResult): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(result);
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = undefined;
    held?.release();
  }
}

/**
 * RFC 3880 §6.1 outputs from the answers of one proxy node: busy (486, 600) wins, then a redirection (3xx), then no
 * answer (408, 480, or a branch we cancelled at its timeout: 487), and any other failure last.
 */
function classify(best: number, finals: Array<{ status: number; contacts: string[] }>): CplProxyResult {
  const statuses = [best, ...finals.map((f) => f.status)];
  if (statuses.some((s) => s === 486 || s === 600)) return { outcome: 'busy', status: best };
  const redirect = finals.find((f) => f.status >= 300 && f.status < 400);
  if (redirect || (best >= 300 && best < 400)) return { outcome: 'redirection', status: redirect?.status ?? best, redirectContacts: redirect?.contacts ?? [] };
  if (statuses.some((s) => s === 408 || s === 480 || s === 487)) return { outcome: 'noanswer', status: best };
  return { outcome: 'failure', status: best };
}

function contactsOf(res: SipResponse): string[] {
  try {
    return res.contacts.map((c) => c.uri.toString());
  } catch {
    return [];
  }
}

/** The response a reject or redirect ends with (RFC 3880 §6.2, §6.3). */
function finalAnswer(outcome: CplOutcome): { status: number; reason?: string; headers?: Record<string, string> } | undefined {
  if (outcome.action === 'reject') return outcome.reason === undefined ? { status: outcome.status } : { status: outcome.status, reason: outcome.reason };
  if (outcome.action !== 'redirect' || outcome.locations.length === 0) return undefined;
  const contact = outcome.locations.map((l) => `<${l.uri}>${l.q !== undefined && l.q < 1 ? `;q=${l.q}` : ''}`).join(', ');
  return { status: outcome.permanent ? 301 : 302, headers: { Contact: contact } };
}

/** What the switches read (RFC 3880 §4.1.1, §4.2): header values as received, the Request-URI as it stands now. */
function cplRequest(ctx: RequestContext, isServedDomain: (host: string) => boolean): CplRequest {
  const req: SipRequest = ctx.request;
  const h = req.headers;
  const from = ctx.from;
  const r: CplRequest = { method: ctx.method, from: h.get('from') ?? from.uri, to: h.get('to') ?? ctx.to.uri, requestUri: ctx.ruri };
  const optional = { subject: 'subject', organization: 'organization', userAgent: 'user-agent', priority: 'priority' } as const;
  for (const [field, name] of Object.entries(optional) as Array<[keyof typeof optional, string]>) {
    const value = h.get(name);
    if (value !== undefined) r[field] = value;
  }
  const languages = h.getAll('accept-language').flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  if (languages.length > 0) r.language = languages;
  // Only a caller of ours can prove who it is; for other domains the From is all there is.
  if (from.host !== undefined && isServedDomain(from.host)) r.authenticated = from.user !== undefined && ctx.authenticatedUser === from.user;
  return r;
}
