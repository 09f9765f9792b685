/**
 * GRUUs (RFC 5627): URIs that reach one instance of a user's devices.
 *
 * - Public GRUU (§3.1): `<aor>;gr=<instance URN>`. It reveals the AOR, by design.
 * - Temporary GRUU (§3.2): `sip:tgruu.<token>@<domain>;gr`, where
 *   token = hex(iv(12) || AES-256-GCM(registeredAt(6 bytes, ms) || aor || 0x00 || instance) || tag(16)).
 *   Encrypted so that it reveals neither the AOR nor the instance (§3.2: temporary GRUUs are for privacy),
 *   authenticated so that it cannot be forged, and self-contained so that any node holding the secret resolves it
 *   without storing anything. The random iv gives every REGISTER a new one; all of them stay valid while the
 *   instance stays registered (the rule is in `Registrar.lookup`).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { PARAMCHAR } from '../message/index.js';
import { ConfigError } from '../util/errors.js';
import { percentEncode } from './aor.js';

export interface TempGruuClaims {
  aor: string;
  instanceId: string;
  /** `Binding.registeredAt` of the binding the GRUU was issued for. */
  registeredAt: number;
}

/** User-part prefix that marks a temporary GRUU of ours. */
export const TEMP_GRUU_PREFIX = 'tgruu.';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const TIME_BYTES = 6;
const MIN_SECRET_BYTES = 16;

export class TempGruuCodec {
  private readonly key: Buffer;

  /** `secret` is shared by cluster nodes; random per instance when omitted (temporary GRUUs then die with it). */
  constructor(secret?: string | Uint8Array) {
    const raw = secret === undefined ? randomBytes(32) : Buffer.from(secret);
    if (raw.length < MIN_SECRET_BYTES) throw new ConfigError('registrar.gruuSecret', `must be at least ${MIN_SECRET_BYTES} bytes`);
    // A derived key, so that the same secret may serve elsewhere without the two uses meeting.
    this.key = createHmac('sha256', raw).update('sipway temp-gruu v1').digest();
  }

  encode(claims: TempGruuClaims): string {
    const time = Buffer.alloc(TIME_BYTES);
    time.writeUIntBE(claims.registeredAt, 0, TIME_BYTES);
    const plain = Buffer.concat([time, Buffer.from(`${claims.aor}\0${claims.instanceId}`, 'utf8')]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    return Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString('hex');
  }

  /** Undefined for anything we did not issue (or issued under another secret). */
  decode(token: string): TempGruuClaims | undefined {
    if (!/^(?:[0-9a-f]{2})+$/i.test(token) || token.length < 2 * (IV_BYTES + TAG_BYTES + TIME_BYTES + 1)) return undefined;
    const raw = Buffer.from(token, 'hex');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    } catch {
      return undefined;
    }
    const [aor, instanceId, ...extra] = plain.subarray(TIME_BYTES).toString('utf8').split('\0');
    if (aor === undefined || instanceId === undefined || extra.length > 0) return undefined;
    return { aor, instanceId, registeredAt: plain.readUIntBE(0, TIME_BYTES) };
  }
}

export function publicGruu(aor: string, instanceId: string): string {
  // The URN as a URI parameter value (§25.1 paramchar); urn:uuid values need no escaping.
  return `${aor};gr=${percentEncode(instanceId, PARAMCHAR)}`;
}

export function temporaryGruu(token: string, domain: string): string {
  return `sip:${TEMP_GRUU_PREFIX}${token}@${domain};gr`;
}
