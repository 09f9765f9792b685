import { formatListenSpec, type BoundListener } from '../transport/index.js';
import type { ServerConfig } from './config.js';

/**
 * The sockets as bound (`udp:0.0.0.0:5060`) and as advertised in Via and Record-Route (`udp:192.0.2.2:5060`): a
 * wildcard bind advertises one of the machine's addresses, or advertisedHost.
 */
export function listenerLogFields(listeners: BoundListener[]): { listen: string[]; advertised: string[] } {
  return { listen: listeners.map(formatListenSpec), advertised: listeners.map((l) => `${l.transport}:${l.advertised}`) };
}

/** What the "started" line says about a server (or, from the cluster primary, about all its workers). */
export function startedLogFields(config: ServerConfig, listeners: { listen: string[]; advertised: string[] }): Record<string, unknown> {
  return {
    ...listeners,
    domains: config.domains,
    // A Redis URL without its credentials.
    store: config.store === 'sqlite' ? config.dataDir : config.store.replace(/\/\/[^@]*@/, '//***@'),
    registerAuth: config.auth.register,
  };
}
