export { aorOf, canonicalAor } from './aor.js';
export { TEMP_GRUU_PREFIX, TempGruuCodec, type TempGruuClaims, publicGruu, temporaryGruu } from './gruu.js';
export {
  Registrar,
  type LookupResult,
  type RegisterResponder,
  type RegistrarOptions,
  type Target,
} from './registrar.js';
export {
  NatKeepalive,
  isBehindNat,
  type NatKeepaliveOptions,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_KEEPALIVE_MAX_FAILURES,
  DEFAULT_KEEPALIVE_MAX_IN_FLIGHT,
} from './keepalive.js';
