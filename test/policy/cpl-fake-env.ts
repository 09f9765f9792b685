import assert from 'node:assert/strict';
import { parseCpl } from '../../src/policy/cpl/parse.js';
import type {
  CplEnvironment,
  CplLocation,
  CplLookupResult,
  CplProxyResult,
  CplRequest,
  CplScript,
  ProxyOrdering,
} from '../../src/policy/cpl/types.js';

/** A CPL environment that records what the script asked for and answers from scripted results. */
export class FakeEnvironment implements CplEnvironment {
  request: CplRequest;
  readonly lookups: Array<{ source: string; timeout: number }> = [];
  readonly proxies: Array<{ locations: CplLocation[]; timeout: number; recurse: boolean; ordering: ProxyOrdering }> = [];
  readonly logs: Array<[string | undefined, string | undefined]> = [];
  readonly mails: string[] = [];
  /** Answers to proxy operations, in order; 'success' once they run out. */
  proxyResults: CplProxyResult[] = [];
  lookupResult: CplLookupResult = { result: 'notfound', locations: [] };
  private readonly instant: Date;

  constructor(request: Partial<CplRequest> = {}, now = '2025-03-28T12:00:00Z') {
    this.request = {
      method: 'INVITE',
      from: 'sip:caller@example.net',
      to: 'sip:alice@example.com',
      requestUri: 'sip:alice@example.com',
      ...request,
    };
    this.instant = new Date(now);
  }

  now(): Date {
    return this.instant;
  }

  async lookup(source: string, opts: { timeout: number }): Promise<CplLookupResult> {
    this.lookups.push({ source, ...opts });
    return this.lookupResult;
  }

  async proxy(locations: CplLocation[], opts: { timeout: number; recurse: boolean; ordering: ProxyOrdering }): Promise<CplProxyResult> {
    this.proxies.push({ locations, ...opts });
    return this.proxyResults.shift() ?? { outcome: 'success', status: 200 };
  }

  log(name: string | undefined, comment: string | undefined): void {
    this.logs.push([name, comment]);
  }

  mail(url: string): void {
    this.mails.push(url);
  }
}

/** Parses a script that must be valid; `body` goes inside <cpl>. */
export function script(body: string): CplScript {
  const r = parseCpl(`<cpl xmlns="urn:ietf:params:xml:ns:cpl">${body}</cpl>`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.script;
}
