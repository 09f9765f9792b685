import { Headers, SipRequest, type SipResponse } from '../message/index.js';
import { buildAuthorization, parseDigestChallenge, parseDigestCredentials, type DigestChallenge } from './digest.js';

export interface ClientCredentials {
  username: string;
  password: string;
  /** Answer only challenges of this realm (a phone's account); by default any realm. */
  realm?: string;
}

type CredentialsHeader = 'authorization' | 'proxy-authorization';

interface RealmState {
  challenge: DigestChallenge;
  header: CredentialsHeader;
  /** Requests sent with this nonce so far (the nc of the next one is this + 1). */
  uses: number;
}

/**
 * The UAC side of digest authentication (RFC 3261 §22.2-§22.3, RFC 7616, RFC 8760): answers a 401 or 407 with the
 * request sent again carrying credentials for each realm that challenged it (the first challenge of a realm whose
 * algorithm it supports: the server's order is its preference), remembers each realm's nonce and counts its uses
 * (nc) so that later requests can carry credentials at once, and gives up when a realm it answered challenges again
 * without saying the nonce was stale (RFC 7616 §3.3): a wrong password must not loop.
 */
export class DigestClient {
  private readonly realms = new Map<string, RealmState>();

  constructor(private readonly credentials: ClientCredentials) {}

  /**
   * The request to send after `response` (a 401 or 407) to `request`: the same Call-ID, From and To, CSeq one
   * higher (§22.2), no Via (the transaction layer adds ours, with a new branch), credentials for every realm that
   * challenged. Undefined when nothing can be answered: no challenge we support, another realm than ours, or
   * credentials refused again (the reason is in `refusal`).
   */
  retry(request: SipRequest, response: SipResponse): SipRequest | undefined {
    this.refusal = undefined;
    const status = response.status;
    if (status !== 401 && status !== 407) {
      this.refusal = `a ${status} is no challenge`;
      return undefined;
    }
    const header: CredentialsHeader = status === 401 ? 'authorization' : 'proxy-authorization';
    const challenges = this.challengesOf(response.headers.getAll(status === 401 ? 'www-authenticate' : 'proxy-authenticate'));
    if (challenges.length === 0) {
      this.refusal = this.credentials.realm ? `no supported challenge for realm "${this.credentials.realm}"` : 'no supported digest challenge';
      return undefined;
    }
    const sent = this.sentNonces(request, header);
    for (const challenge of challenges) {
      // Challenged again for a realm the request answered, and not because the nonce went stale: refused.
      if (sent.has(challenge.realm) && !challenge.stale) {
        this.refusal = `credentials for realm "${challenge.realm}" refused (wrong user name or password?)`;
        this.realms.delete(challenge.realm);
        return undefined;
      }
      this.realms.set(challenge.realm, { challenge, header, uses: 0 });
    }
    const retried = new SipRequest(request.method, request.uri.clone(), new Headers(request.headers.fields.filter((f) => f.name !== 'via' && f.name !== header)), request.body);
    retried.headers.set('cseq', `${request.cseq.seq + 1} ${request.method}`);
    this.authorize(retried);
    return retried;
  }

  /** Why the last `retry` returned undefined. */
  refusal: string | undefined;

  /**
   * Adds credentials for every realm answered before (nc counting up), replacing any the request carries: a REGISTER
   * refresh or a request through the same proxy then needs no new challenge while the nonce lasts.
   */
  authorize(request: SipRequest): void {
    for (const header of ['authorization', 'proxy-authorization'] as const) {
      const states = [...this.realms.values()].filter((s) => s.header === header);
      if (states.length === 0) continue;
      request.headers.remove(header);
      for (const state of states) {
        state.uses++;
        request.headers.append(
          header,
          buildAuthorization({
            challenge: state.challenge,
            username: this.credentials.username,
            password: this.credentials.password,
            method: request.method,
            uri: request.uri.toString(),
            nc: state.uses,
            body: request.body,
          }),
        );
      }
    }
  }

  /** The first supported challenge of each realm, in the order the realms first appear. */
  private challengesOf(values: readonly string[]): DigestChallenge[] {
    const byRealm = new Map<string, DigestChallenge>();
    for (const value of values) {
      const parsed = parseDigestChallenge(value);
      if (!parsed.ok) continue;
      const realm = parsed.value.realm;
      if (this.credentials.realm !== undefined && realm !== this.credentials.realm) continue;
      if (!byRealm.has(realm)) byRealm.set(realm, parsed.value);
    }
    return [...byRealm.values()];
  }

  /** realm -> nonce of the credentials the request carried in `header` (the realms it answered). */
  private sentNonces(request: SipRequest, header: CredentialsHeader): Map<string, string> {
    const out = new Map<string, string>();
    for (const value of request.headers.getAll(header)) {
      const parsed = parseDigestCredentials(value);
      if (parsed.ok) out.set(parsed.value.realm, parsed.value.nonce);
    }
    return out;
  }
}
