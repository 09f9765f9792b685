/**
 * G.711 µ-law (ITU-T G.711, PCMU: RTP payload type 0, RFC 3551 §4.5.14): 16-bit linear PCM to 8-bit codes and back.
 * Hand-written from the recommendation's segment/bias definition (bias 0x84, clip at 32635).
 */
const BIAS = 0x84;
const CLIP = 32635;

export function linearToUlaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

export function ulawToLinear(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
  return u & 0x80 ? -magnitude : magnitude;
}

/** Encodes 16-bit little-endian PCM samples into µ-law bytes. */
export function encodeUlaw(pcm: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = linearToUlaw(pcm[i]!);
  return out;
}

export function decodeUlaw(codes: Uint8Array): Int16Array {
  const out = new Int16Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = ulawToLinear(codes[i]!);
  return out;
}

/**
 * G.711 A-law (PCMA: RTP payload type 8, RFC 3551 §4.5.14), hand-written from the recommendation's segment table:
 * a 13-bit magnitude in 8 segments of 16 steps, the two lowest segments sharing one step size, and every even bit
 * of the code inverted (XOR 0x55) so that the idle channel is not a run of zeros on the line.
 */
const ALAW_INVERT = 0x55;

export function linearToAlaw(sample: number): number {
  const s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  // Negative magnitudes are taken as the ones' complement so that -32768 fits and the two halves quantise alike.
  const magnitude = s >= 0 ? s : -s - 1;
  const sign = s >= 0 ? 0x80 : 0;
  let segment = 0;
  for (let top = 256; magnitude >= top && segment < 7; top <<= 1) segment++;
  const mantissa = (magnitude >> (segment === 0 ? 4 : segment + 3)) & 0x0f;
  return (sign | (segment << 4) | mantissa) ^ ALAW_INVERT;
}

export function alawToLinear(code: number): number {
  const a = (code & 0xff) ^ ALAW_INVERT;
  const segment = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  // The middle of the step: segment 0 has no implied leading one, the others have it (0x100) above the mantissa.
  const magnitude = segment === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (segment - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

export function encodeAlaw(pcm: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = linearToAlaw(pcm[i]!);
  return out;
}

export function decodeAlaw(codes: Uint8Array): Int16Array {
  const out = new Int16Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = alawToLinear(codes[i]!);
  return out;
}

/** The two laws of G.711, named as their RTP encodings are in SDP (lower case). */
export type G711Law = 'pcmu' | 'pcma';

/** What an RTP stream needs to know of a law: its static payload type (RFC 3551 table 4) and its code for 0. */
export interface G711Codec {
  readonly law: G711Law;
  readonly payloadType: number;
  /** The encoding name of an SDP rtpmap line. */
  readonly encodingName: 'PCMU' | 'PCMA';
  readonly silence: number;
}

export const G711_ULAW: G711Codec = Object.freeze({ law: 'pcmu', payloadType: 0, encodingName: 'PCMU', silence: 0xff });
export const G711_ALAW: G711Codec = Object.freeze({ law: 'pcma', payloadType: 8, encodingName: 'PCMA', silence: 0xd5 });

export function g711Codec(law: G711Law): G711Codec {
  return law === 'pcma' ? G711_ALAW : G711_ULAW;
}

export function encodeG711(law: G711Law, pcm: Int16Array): Buffer {
  return law === 'pcma' ? encodeAlaw(pcm) : encodeUlaw(pcm);
}

export function decodeG711(law: G711Law, codes: Uint8Array): Int16Array {
  return law === 'pcma' ? decodeAlaw(codes) : decodeUlaw(codes);
}
