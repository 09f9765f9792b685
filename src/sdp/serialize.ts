import type { Attribute, Bandwidth, ConnectionData, SessionDescription, SdpLine } from './session-description.js';

/**
 * Writes a description in the RFC 4566 §5 order (v o s i u e p c b t r z k a, then per media m i c b k a)
 * with CRLF line ends. Lines of unknown type close their section, which is where vendors put them.
 */
export function serializeSdp(sdp: SessionDescription): string {
  const out: string[] = [];
  const o = sdp.origin;
  out.push(`v=${sdp.version}`);
  out.push(`o=${o.username} ${o.sessId} ${o.sessVersion} ${o.netType} ${o.addrType} ${o.unicastAddress}`);
  out.push(`s=${sdp.sessionName}`);
  if (sdp.information !== undefined) out.push(`i=${sdp.information}`);
  if (sdp.uri !== undefined) out.push(`u=${sdp.uri}`);
  for (const e of sdp.emails) out.push(`e=${e}`);
  for (const p of sdp.phones) out.push(`p=${p}`);
  if (sdp.connection) out.push(connectionLine(sdp.connection));
  pushBandwidths(out, sdp.bandwidths);
  for (const t of sdp.timings) {
    out.push(`t=${t.start} ${t.stop}`);
    for (const r of t.repeats) out.push(`r=${[r.interval, r.duration, ...r.offsets].join(' ')}`);
  }
  if (sdp.zones.length > 0) out.push(`z=${sdp.zones.map((z) => `${z.time} ${z.offset}`).join(' ')}`);
  if (sdp.key !== undefined) out.push(`k=${sdp.key}`);
  pushAttributes(out, sdp.attributes);
  pushUnknown(out, sdp.unknownLines);
  for (const m of sdp.media) {
    const port = m.portCount === undefined ? `${m.port}` : `${m.port}/${m.portCount}`;
    out.push(`m=${[m.type, port, m.proto, ...m.formats].join(' ')}`);
    if (m.information !== undefined) out.push(`i=${m.information}`);
    for (const c of m.connections) out.push(connectionLine(c));
    pushBandwidths(out, m.bandwidths);
    if (m.key !== undefined) out.push(`k=${m.key}`);
    pushAttributes(out, m.attributes);
    pushUnknown(out, m.unknownLines);
  }
  out.push('');
  return out.join('\r\n');
}

function connectionLine(c: ConnectionData): string {
  const ttl = c.ttl === undefined ? '' : `/${c.ttl}`;
  const count = c.count === undefined ? '' : `/${c.count}`;
  return `c=${c.netType} ${c.addrType} ${c.address}${ttl}${count}`;
}

function pushBandwidths(out: string[], bandwidths: Bandwidth[]): void {
  for (const b of bandwidths) out.push(`b=${b.type}:${b.value}`);
}

function pushAttributes(out: string[], attributes: Attribute[]): void {
  for (const a of attributes) out.push(a.value === undefined ? `a=${a.name}` : `a=${a.name}:${a.value}`);
}

function pushUnknown(out: string[], lines: SdpLine[]): void {
  for (const l of lines) out.push(`${l.type}=${l.value}`);
}
