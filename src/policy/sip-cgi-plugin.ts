/**
 * The SIP-CGI step of a routing policy (RFC 3050): the configured script decides about a request and, when it asks
 * for them (CGI-AGAIN yes), about the responses of the transaction; the policy API carries out what it says.
 */
import { Headers, tryParseUri, uriEquals, type SipResponse } from '../message/index.js';
import { forwardedResponse } from './sip-cgi/apply.js';
import type { SipCgiContext } from './sip-cgi/environment.js';
import type { SipCgiAction } from './sip-cgi/output.js';
import type { SipCgiRunner } from './sip-cgi/runner.js';
import type { BranchContext, InterceptContext, RelayOptions, RequestContext } from './types.js';

/** Where the server is, for the SIP-CGI SERVER_* variables. */
export interface SipCgiServerInfo {
  name: string;
  port: number;
}

type ProxyAction = Extract<SipCgiAction, { type: 'proxy' }>;

/**
 * Responses a transaction keeps for CGI-FORWARD-RESPONSE by token. A script names the responses it was shown; a
 * transaction with more (a long serial fork) forgets the oldest, whose tokens then name nothing.
 */
const KEPT_RESPONSES = 32;

/** Fields a reply builds from the request itself (§8.2.6); a script's copies of them are not repeated. */
const COPIED_BY_REPLY = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'content-length', 'record-route']);

/**
 * Hands the request to a SIP-CGI script and carries out what it says: its final response is sent; proxy actions
 * relay to their URIs (forking when there are several), each branch with the header edits of its own action; no
 * output leaves the request to the rest of the policy (returns false). After `CGI-AGAIN yes` the script is run again
 * for each response of the relay (see SipCgiTransaction.onResponse). A script that fails, hangs or writes garbage
 * costs its request a 500 (503 when too many scripts run), never the server.
 */
export async function sipCgi(ctx: RequestContext, runner: SipCgiRunner, server: SipCgiServerInfo): Promise<boolean> {
  const src = ctx.source;
  const cgi: SipCgiContext = {
    serverName: server.name,
    serverPort: server.port,
    transport: src?.transport ?? 'udp',
    remoteAddress: src?.address ?? '',
    remotePort: src?.port ?? 0,
  };
  const result = await runner.runForRequest(ctx.request, cgi);
  if (result.kind === 'error') {
    ctx.log('SIP-CGI script failed', { reason: result.reason });
    ctx.reply(result.status, failureReason(result.status, result.reason));
    return true;
  }
  for (const action of result.actions) {
    if (action.type !== 'respond') continue;
    const res = action.response;
    // The policy API answers requests with final responses only; a provisional one of the script's is not sent.
    if (res.status < 200) {
      ctx.log('SIP-CGI provisional response not sent', { status: res.status });
      continue;
    }
    ctx.reply(res.status, res.reason, replyHeaders(res));
    return true;
  }
  const proxies = result.actions.filter((a): a is ProxyAction => a.type === 'proxy');
  if (proxies.length === 0) return false;
  const transaction = new SipCgiTransaction(ctx, runner, cgi, proxies, result.cookie, result.again);
  await ctx.relay(
    proxies.map((p) => p.uri.toString()),
    transaction.relayOptions(),
  );
  return true;
}

/** The script's state across the invocations of one transaction: its cookie, its wish to go on, its forks. */
class SipCgiTransaction {
  /** Proxy actions whose branch has not been sent yet, in the order the script gave them. */
  private readonly forks: ProxyAction[];
  /** Responses the script has been shown, by RESPONSE_TOKEN (insertion order: oldest first). */
  private readonly responses = new Map<string, SipResponse>();
  private shown = 0;

  constructor(
    private readonly ctx: RequestContext,
    private readonly runner: SipCgiRunner,
    private readonly cgi: SipCgiContext,
    proxies: ProxyAction[],
    private cookie: string | undefined,
    private again: boolean,
  ) {
    this.forks = [...proxies];
  }

  relayOptions(): RelayOptions {
    const options: RelayOptions = {};
    // The relay's own onBranch takes the place of the policy's: set only when some branch has edits to get.
    if (this.again || this.forks.some((f) => f.edits.length > 0 || f.body !== undefined)) options.onBranch = (b) => this.onBranch(b);
    if (this.again) options.interceptResponse = (r) => this.onResponse(r);
    return options;
  }

  /** Each branch gets the edits of the proxy action that named its target (the first such action not used yet). */
  private onBranch(branch: BranchContext): void {
    const target = tryParseUri(branch.target);
    const i = target ? this.forks.findIndex((f) => uriEquals(f.uri, target)) : -1;
    if (i < 0) return;
    const [fork] = this.forks.splice(i, 1);
    for (const edit of fork!.edits) {
      branch.headers.remove(edit.name);
      for (const value of edit.values) branch.headers.add(edit.name, value);
    }
    if (fork!.body !== undefined) branch.log('SIP-CGI body replacement not supported; the request body is kept', { target: branch.target });
  }

  /**
   * RFC 3050 response invocation: the script sees each response of the transaction but 100 (the proxy's hook skips
   * it, and 2xx retransmissions), with SCRIPT_COOKIE and a RESPONSE_TOKEN, for as long as its last run said
   * CGI-AGAIN yes. Returning no promise lets the response go on at once.
   */
  private onResponse(ictx: InterceptContext): Promise<void> | undefined {
    if (!this.again) return undefined;
    return this.invoke(ictx);
  }

  private async invoke(ictx: InterceptContext): Promise<void> {
    const res = ictx.response;
    const token = `r${++this.shown}`;
    this.keep(token, res);
    const result = await this.runner.runForResponse(this.ctx.request, res, this.cookie, {
      ...this.cgi,
      responseToken: token,
      // The previous hop of a response is the branch's next hop.
      ...(res.source && { transport: res.source.transport, remoteAddress: res.source.address, remotePort: res.source.port }),
    });
    if (result.kind === 'error') {
      // Its state is unknown now: the script is not asked again, and this response goes on as usual.
      this.again = false;
      this.ctx.log('SIP-CGI response invocation failed; the response is forwarded as usual', { status: res.status, reason: result.reason });
      return;
    }
    this.again = result.again;
    if (result.cookie !== undefined) this.cookie = result.cookie;
    let forwarded = false;
    for (const action of result.actions) {
      switch (action.type) {
        case 'default':
          forwarded = true;
          break;
        case 'respond':
          ictx.send(action.response);
          break;
        case 'proxy':
          this.forks.push(action);
          ictx.relay([action.uri.toString()]);
          break;
        case 'forward-response': {
          if (action.token === token) {
            ictx.forward(forwardedResponse(res, action));
            forwarded = true;
            break;
          }
          const earlier = this.responses.get(action.token);
          if (earlier) ictx.send(forwardedResponse(earlier, action));
          else this.ctx.log('SIP-CGI forwards an unknown response token', { token: action.token });
          break;
        }
      }
    }
    // A response the script neither forwarded nor left to the default action is its to replace (RFC 3050).
    if (!forwarded) ictx.withhold();
  }

  private keep(token: string, res: SipResponse): void {
    this.responses.set(token, res);
    if (this.responses.size > KEPT_RESPONSES) this.responses.delete(this.responses.keys().next().value!);
  }
}

function replyHeaders(res: SipResponse): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const f of res.headers.fields) {
    if (!COPIED_BY_REPLY.has(f.name)) headers[Headers.spelling(f.name)] = f.value;
  }
  return headers;
}

/**
 * The reason phrase of a failed script's answer: the kind of failure, never the script's own words (its stderr line
 * may hold anything), which go to the log.
 */
function failureReason(status: 500 | 503, reason: string): string {
  if (status === 503) return 'Service Unavailable - too many SIP-CGI scripts running';
  if (reason.startsWith('timed out')) return 'Server Internal Error - SIP-CGI script timed out';
  if (reason.startsWith('output larger')) return 'Server Internal Error - SIP-CGI script output too large';
  return 'Server Internal Error - SIP-CGI script failed';
}
