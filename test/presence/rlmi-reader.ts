import assert from 'node:assert/strict';

/** One part of a multipart/related body: its headers (lower-case names) and body. */
export interface Part {
  headers: Record<string, string>;
  body: string;
}

/** An RLMI resource as a test reads it: uri, name, and its one instance's attributes. */
export interface Resource {
  uri: string;
  name: string | undefined;
  instance: Record<string, string>;
}

/**
 * A resource-list NOTIFY body (RFC 4662 §5) taken apart: the Content-Type's parameters, the RLMI root's attributes,
 * its resources, the parts by Content-ID, and each active member's PIDF through its cid.
 */
export function readList(contentType: string, body: string) {
  const params = Object.fromEntries([...contentType.matchAll(/;\s*([\w-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  const chunks = body.split(`--${params.boundary}`);
  assert.equal(chunks.at(-1), '--\r\n', 'the body ends with the closing delimiter');
  const parts: Part[] = chunks.slice(1, -1).map((chunk) => {
    const [head, ...rest] = chunk.replace(/^\r\n/, '').split('\r\n\r\n');
    const headers = Object.fromEntries(head!.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    return { headers, body: rest.join('\r\n\r\n') };
  });
  const byCid = new Map(parts.map((p) => [p.headers['content-id']!.replace(/^<|>$/g, ''), p]));
  const root = parts[0]!;
  const rlmi = root.body;
  const list = Object.fromEntries([.../<list ([^>]*)>/.exec(rlmi)![1]!.matchAll(/([\w:]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  const resources: Resource[] = [...rlmi.matchAll(/<resource uri="([^"]*)">([\s\S]*?)<\/resource>/g)].map((m) => ({
    uri: m[1]!,
    name: /<name>([^<]*)<\/name>/.exec(m[2]!)?.[1],
    instance: Object.fromEntries([.../<instance ([^>]*)\/>/.exec(m[2]!)![1]!.matchAll(/(\w+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!])),
  }));
  const pidf = (uri: string): string | undefined => {
    const cid = resources.find((r) => r.uri === uri)?.instance.cid;
    return cid === undefined ? undefined : byCid.get(cid)?.body;
  };
  return { contentType, params, parts, root, list, resources, pidf, byCid };
}
