import { lookup } from 'node:dns/promises';
import { addressFamily, isInvalidName, normalizeAddress } from './address.js';
import { TransportError, type Destination } from './types.js';

/** The address a destination is sent to. */
export interface Resolved {
  address: string;
  /** The name the destination was given by, for TLS; undefined when it was an IP address. */
  servername: string | undefined;
}

/**
 * The transport layer's last step before a socket: a destination's name looked up (A/AAAA; RFC 3263 resolution
 * belongs above), then the destination filter's say on the address.
 */
export class DestinationLookup {
  /** `filter`: called with every destination IP address; false refuses it ('refused-destination'). */
  constructor(private readonly filter: ((address: string) => boolean) | undefined) {}

  async resolve(dest: Destination): Promise<Resolved> {
    const literal = this.literal(dest);
    if (literal) return literal;
    const servername = dest.address;
    // An empty host would be looked up as the machine's own name (Node's dns.lookup(''), with a null address).
    if (servername === '') throw new TransportError('connect', 'no host to send to', dest);
    if (isInvalidName(servername)) throw new TransportError('connect', `${servername} is under .invalid and never resolves (RFC 6761)`, dest);
    let address: string;
    try {
      address = (await lookup(servername)).address;
      if (!address) throw new Error('no address');
    } catch (err) {
      throw new TransportError('connect', `cannot resolve ${servername}: ${(err as Error).message}`, dest);
    }
    return { address: this.allowed(normalizeAddress(address), dest), servername };
  }

  /** The target of a destination whose address is an IP literal (no promise to wait for); undefined for a name. */
  literal(dest: Destination): Resolved | undefined {
    const address = dest.address.startsWith('[') ? dest.address.slice(1, -1) : dest.address;
    if (addressFamily(address) === undefined) return undefined;
    return { address: this.allowed(normalizeAddress(address), dest), servername: undefined };
  }

  private allowed(address: string, dest: Destination): string {
    if (this.filter && !this.filter(address)) throw new TransportError('refused-destination', `destination ${address} refused by the destination filter`, dest);
    return address;
  }
}
