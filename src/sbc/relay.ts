import { RtpEngineRelay, UdpMediaRelay, type MediaRelay } from '../media/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { SbcMediaConfig } from './config.js';

/**
 * The media relay the config names: the embedded one (its sockets bound as calls need them) or an rtpengine daemon
 * driven over ng. `advertise` stands in for `media.advertise` when that is not set (the server's own address).
 */
export function createMediaRelay(media: SbcMediaConfig, env: { clock: Clock; logger: Logger; advertise?: string }): MediaRelay {
  if (media.engine === 'rtpengine') {
    const r = media.rtpengine;
    return new RtpEngineRelay({ address: r.host, port: r.port, timeoutMs: r.timeoutMs, flags: r.flags, inactivityMs: media.inactivityMs, clock: env.clock, logger: env.logger });
  }
  const unspecified = media.address === '0.0.0.0' || media.address === '::';
  return new UdpMediaRelay({
    address: media.address,
    advertise: media.advertise ?? (unspecified ? env.advertise : undefined),
    portMin: media.portMin,
    portMax: media.portMax,
    inactivityMs: media.inactivityMs,
    clock: env.clock,
    logger: env.logger,
  });
}
