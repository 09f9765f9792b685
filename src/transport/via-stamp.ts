import { isIP } from 'node:net';
import type { AnyMessage, SipRequest, SipResponse, Via } from '../message/index.js';
import { normalizeAddress } from './address.js';
import { DEFAULT_PORTS, isReliableTransport, viaTransport } from './response-route.js';
import type { Destination } from './types.js';

/**
 * Records where a request really came from in its top Via (§18.2.1, RFC 3581 §4): `received` when the sent-by host
 * is not the packet's source address (always when the client asked for rport), and the source port in an empty
 * `rport` (or in any case with `forceRport`, for clients behind NAT that do not ask). A `received` the sender wrote
 * itself is replaced too: responses go to `received`, and the sender must not choose that address (a reflector) or
 * make us look up a name there. Throws when the top Via is missing or malformed.
 */
export function stampVia(request: SipRequest, address: string, port: number, forceRport: boolean): void {
  const via = request.via;
  const rport = via.params.get('rport');
  const fillRport = forceRport || rport === null || rport === '';
  const needReceived = rport !== undefined || fillRport || via.params.has('received') || normalizeAddress(via.hostname) !== address;
  if (!fillRport && (!needReceived || via.params.get('received') === address)) return;
  const stamped = via.clone();
  if (needReceived) stamped.params.set('received', address);
  if (fillRport) stamped.params.set('rport', String(port));
  replaceTopVia(request, stamped);
}

/** Rewrites the top Via value only; the other Via fields stay slices of the received bytes. */
export function replaceTopVia(message: AnyMessage, via: Via): void {
  message.headers.removeFirstValue('via');
  message.headers.prepend('via', via.toString());
  message.seedView('via', via);
}

/**
 * Where a response goes when the caller gives no destination, from its top Via alone (§18.2.2 with RFC 3581 §4):
 * maddr, else `received` (or sent-by host) with rport over UDP; for stream transports the sent-by port, which is
 * where a server opens a new connection when the request's connection has gone.
 */
export function viaDestination(response: SipResponse): Destination {
  const via = response.via;
  const transport = viaTransport(via.transport) ?? 'udp';
  const port = via.port ?? DEFAULT_PORTS[transport];
  if (isReliableTransport(transport)) return { transport, address: via.received ?? via.hostname, port };
  if (via.maddr && isIP(via.maddr.replace(/^\[|\]$/g, '')) !== 0) return { transport, address: via.maddr, port };
  const rport = via.rport;
  return { transport, address: via.received ?? via.hostname, port: typeof rport === 'number' ? rport : port };
}
