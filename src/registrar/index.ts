export { aorOf, canonicalAor } from './aor.js';
export { TEMP_GRUU_PREFIX, TempGruuCodec, type TempGruuClaims, publicGruu, temporaryGruu } from './gruu.js';
export {
  Registrar,
  type LookupResult,
  type RegisterResponder,
  type RegistrarOptions,
  type Target,
} from './registrar.js';
