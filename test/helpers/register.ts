import { buildAuthorization, parseDigestChallenge, type DigestChallenge } from '../../src/auth/digest.js';
import type { SipResponse } from '../../src/message/index.js';
import type { UdpClient } from './server.js';

export interface RegisterOptions {
  user: string;
  domain: string;
  password?: string;
  /** The authenticating user when it differs from the AOR's (third-party registration). */
  authUser?: string;
  contact?: string;
  expires?: number;
  contactParams?: string;
  callId?: string;
  cseq?: number;
  algorithm?: 'MD5' | 'SHA-256';
  extra?: string[];
}

let counter = 0;

export function registerBytes(client: UdpClient, o: RegisterOptions & { authorization?: string; from?: string }): Buffer {
  const contact = o.contact === '*' ? '*' : `<${o.contact ?? `sip:${o.user}@127.0.0.1:${client.port}`}>${o.contactParams ?? ''}`;
  const lines = [
    `REGISTER sip:${o.domain} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bKreg${++counter}x${Date.now()};rport`,
    'Max-Forwards: 70',
    `From: <sip:${o.from ?? o.authUser ?? o.user}@${o.domain}>;tag=t${counter}`,
    `To: <sip:${o.user}@${o.domain}>`,
    `Call-ID: ${o.callId ?? `reg-${o.user}@test`}`,
    `CSeq: ${o.cseq ?? 1} REGISTER`,
    ...(o.contact === undefined && o.expires === undefined ? [] : [`Contact: ${contact}`]),
    ...(o.expires !== undefined ? [`Expires: ${o.expires}`] : []),
    ...(o.authorization ? [`Authorization: ${o.authorization}`] : []),
    ...(o.extra ?? []),
    'Content-Length: 0',
  ];
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n');
}

/** The challenge for `algorithm` out of a 401's WWW-Authenticate values. */
export function challengeOf(res: SipResponse, algorithm: 'MD5' | 'SHA-256' = 'MD5'): DigestChallenge {
  for (const v of res.headers.getAll('www-authenticate')) {
    const c = parseDigestChallenge(v);
    if (c.ok && c.value.algorithm === algorithm) return c.value;
  }
  throw new Error(`no ${algorithm} challenge in ${res.status} ${res.reason}`);
}

/**
 * REGISTER, answer the 401 with digest credentials, return the final response. The first REGISTER uses `cseq`,
 * the authenticated one `cseq + 1` (as a UA does).
 */
export async function register(client: UdpClient, port: number, o: RegisterOptions): Promise<{ res: SipResponse; challenge?: DigestChallenge }> {
  const cseq = o.cseq ?? 1;
  const first = await client.request(registerBytes(client, { ...o, cseq }), port);
  if (!first) throw new Error('no answer to REGISTER');
  if (first.status !== 401 || o.password === undefined) return { res: first };
  const challenge = challengeOf(first, o.algorithm ?? 'MD5');
  const authorization = buildAuthorization({ challenge, username: o.authUser ?? o.user, password: o.password, method: 'REGISTER', uri: `sip:${o.domain}` });
  const res = await client.request(registerBytes(client, { ...o, cseq: cseq + 1, authorization }), port);
  if (!res) throw new Error('no answer to the authenticated REGISTER');
  return { res, challenge };
}

/** Contact values of a 200 with their expires, as `uri -> seconds`. */
export function boundContacts(res: SipResponse): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of res.contacts) out.set(c.uri.toString(), Number(c.params.get('expires')));
  return out;
}
