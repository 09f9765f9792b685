import { createMediaRelay } from './relay.js';
import { Sbc, type SbcServiceOptions } from './sbc.js';

/**
 * The SBC of a server with the media relay its config names. `advertise`: the address written into SDP when the
 * config gives none and the embedded relay binds every interface (the server's advertised or listener address).
 */
export function createSbc(options: Omit<SbcServiceOptions, 'relay'> & { advertise?: string }): Sbc {
  const { advertise, ...rest } = options;
  const relay = createMediaRelay(options.config.media, { clock: options.clock, logger: options.logger.child({ layer: 'media' }), advertise });
  const media = options.config.media;
  const unspecified = media.address === '0.0.0.0' || media.address === '::';
  const mediaAddress = media.engine === 'embedded' ? (media.advertise ?? (unspecified ? advertise : media.address)) : media.advertise;
  return new Sbc({ ...rest, relay, mediaAddress });
}
