import type { SipRequest, Via } from '../message/index.js';
import { hash64Hex } from '../util/hash.js';
import { MAGIC_COOKIE, randomToken } from '../util/ids.js';

/**
 * Our branch parameters (§16.6 step 8) have two parts: `z9hG4bKsw` + a hash of what decides how the request is
 * processed (the loop-detection part, §16.3 step 4), then `.` + a per-branch suffix that makes the branch unique.
 * A stateless branch (§16.11) ends in `.sl`: it is the same for every retransmission of a request, and for the
 * CANCEL and the ACK of a non-2xx response that follow it, so that the next hop matches them to its transaction.
 */
const PREFIX = `${MAGIC_COOKIE}sw`;
const HASH_LENGTH = 16;
const STATELESS_SUFFIX = 'sl';
const BRANCH = new RegExp(`^${PREFIX}([0-9a-f]{${HASH_LENGTH}})\\.([a-z0-9]+)$`);

/**
 * The loop-detection hash of a request as received, with `topVia` the Via that was on top when it arrived: the
 * From tag, Call-ID, CSeq number, Request-URI, that Via, and the Route and Proxy-Require values. The method is left
 * out (§16.6 step 8), so a CANCEL hashes like its INVITE.
 * DEVIATION(RFC 3261 §16.6 step 8): the To tag and Proxy-Authorization, which the RFC suggests hashing, are left
 * out: the ACK for a non-2xx response carries the To tag of that response, and neither it nor a CANCEL carries
 * credentials, yet both must have the branch of the request they belong to. Neither field changes on a loop, so
 * loop detection loses nothing; the client's Via branch in `topVia` keeps transactions apart.
 */
export function loopHash(req: SipRequest, topVia: Via): string {
  // Not a secret, only a fingerprint compared by the same code on every worker: a fast 64-bit hash will do.
  return hash64Hex([
    req.fromTag ?? '',
    req.callId,
    String(req.cseq.seq),
    req.uri.toString(),
    topVia.toString(),
    req.headers.list('route').join(','),
    req.headers.list('proxy-require').join(','),
  ]);
}

/** A branch for one client transaction of a stateful proxy: unique per branch, even for two branches to one target. */
export function statefulBranch(hash: string): string {
  return `${PREFIX}${hash}.${randomToken(10)}`;
}

/** §16.11: the branch of a statelessly forwarded request, a function of the request alone. */
export function statelessBranch(hash: string): string {
  return `${PREFIX}${hash}.${STATELESS_SUFFIX}`;
}

export interface ParsedBranch {
  hash: string;
  stateless: boolean;
}

/** Splits a branch we wrote; undefined for any other. */
export function parseBranch(branch: string | undefined): ParsedBranch | undefined {
  const m = branch === undefined ? null : BRANCH.exec(branch);
  return m ? { hash: m[1]!, stateless: m[2] === STATELESS_SUFFIX } : undefined;
}
