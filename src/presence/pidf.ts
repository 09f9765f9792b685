/**
 * PIDF (RFC 3863) documents for the presence package: a basic one from registration state, and the composition of
 * several publications of one presentity (RFC 3903 §3: each device publishes its own tuples). Hand-read, not a full
 * XML parser: the root's namespace declarations, its tuples by id, and the RPID/data-model person and device elements
 * (RFC 4480, RFC 4479) are what composition needs; everything inside them is passed through untouched.
 */

const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';

/** A document of one tuple saying whether `entity` can be reached (open) or not (closed). */
export function basicPidf(entity: string, open: boolean, tupleId = 'sipway-registration', note?: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="${PIDF_NS}" entity="${escapeXml(entity)}">`,
    `  <tuple id="${escapeXml(tupleId)}">`,
    `    <status><basic>${open ? 'open' : 'closed'}</basic></status>`,
    ...(note === undefined ? [] : [`    <note>${escapeXml(note)}</note>`]),
    '  </tuple>',
    '</presence>',
    '',
  ].join('\r\n');
}

/**
 * One document for `entity` from its publications, oldest first: every tuple by its id, a newer publication's tuple
 * replacing an older one of the same id; the person and device elements of the newest publication that has any;
 * the namespace declarations of all of them. Undefined when no publication holds a presence document.
 */
export function composePidf(entity: string, documents: readonly string[]): string | undefined {
  const namespaces = new Map<string, string>();
  const tuples = new Map<string, string>();
  let extras: string[] = [];
  let any = false;
  for (const doc of documents) {
    const root = /<((?:[A-Za-z_][\w.-]*:)?)presence\b([^>]*)>([\s\S]*)<\/\1presence\s*>/.exec(doc);
    if (!root) continue;
    any = true;
    const prefix = root[1]!;
    for (const m of root[2]!.matchAll(/\s(xmlns(?::[\w.-]+)?)\s*=\s*("[^"]*"|'[^']*')/g)) {
      if (!namespaces.has(m[1]!)) namespaces.set(m[1]!, m[2]!.slice(1, -1));
    }
    const body = root[3]!;
    const tupleRe = new RegExp(`<${escapeRe(prefix)}tuple\\b[^>]*\\bid\\s*=\\s*["']([^"']+)["'][^>]*>[\\s\\S]*?<\\/${escapeRe(prefix)}tuple\\s*>`, 'g');
    for (const t of body.matchAll(tupleRe)) {
      tuples.delete(t[1]!); // a newer one goes last, where the newest belong
      tuples.set(t[1]!, t[0]);
    }
    const found = [...body.matchAll(/<((?:[A-Za-z_][\w.-]*:)?)(person|device)\b[^>]*>[\s\S]*?<\/\1\2\s*>/g)].map((m) => m[0]);
    if (found.length > 0) extras = found;
  }
  if (!any) return undefined;
  const decls = [...namespaces].filter(([name]) => name !== 'xmlns').map(([name, uri]) => ` ${name}="${escapeXml(uri)}"`);
  // Our root is the unprefixed PIDF element; a prefix the publications used for PIDF stays declared for their content.
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="${PIDF_NS}"${decls.join('')} entity="${escapeXml(entity)}">`,
    ...[...tuples.values()].map((t) => `  ${t}`),
    ...extras.map((e) => `  ${e}`),
    '</presence>',
    '',
  ].join('\r\n');
}

/** The basic status of each tuple of a PIDF document, by tuple id (for tests and the CLI). */
export function basicStatuses(doc: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of doc.matchAll(/<(?:[\w.-]+:)?tuple\b[^>]*\bid\s*=\s*["']([^"']+)["'][^>]*>([\s\S]*?)<\/(?:[\w.-]+:)?tuple\s*>/g)) {
    const basic = /<(?:[\w.-]+:)?basic\s*>\s*([^<\s]+)\s*</.exec(t[2]!);
    if (basic) out[t[1]!] = basic[1]!;
  }
  return out;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
