import { SaxesParser, type SaxesTagNS } from 'saxes';
import type { CplError, CplPosition } from './types.js';

/** An element as the CPL validator sees it: namespace-resolved names, attributes and children with positions. */
export interface XmlElement {
  /** Local name and namespace URI ('' for none). */
  local: string;
  uri: string;
  /** As written, with its prefix, for messages. */
  name: string;
  pos: CplPosition;
  attributes: XmlAttribute[];
  children: XmlElement[];
  /** Where the first non-blank character data inside the element is, if any (CPL elements hold none). */
  textPos?: CplPosition;
}

export interface XmlAttribute {
  /** Local name of the element carrying it, for messages. */
  element: string;
  local: string;
  uri: string;
  name: string;
  value: string;
  pos: CplPosition;
}

export interface XmlLimits {
  maxBytes: number;
  /** Elements in the document. */
  maxElements: number;
  maxDepth: number;
}

export type XmlResult = { ok: true; root: XmlElement } | { ok: false; error: CplError };

const XMLNS_URI = 'http://www.w3.org/2000/xmlns/';

/**
 * Parses a document with saxes (strict XML 1.0 with namespaces). Only the first well-formedness error is
 * reported: what follows it would be noise. DTDs are refused: CPL needs none, and refusing them closes the door on
 * entity expansion tricks.
 */
export function parseXml(text: string, limits: XmlLimits): XmlResult {
  if (Buffer.byteLength(text, 'utf8') > limits.maxBytes) {
    return { ok: false, error: { line: 1, column: 1, message: `script is larger than ${limits.maxBytes} bytes` } };
  }
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const positionOf = (index: number): CplPosition => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: index - lineStarts[lo]! + 1 };
  };

  const parser = new SaxesParser({ xmlns: true, position: true });
  // The parser's cursor as an index into `text`.
  const cursor = (): number => lineStarts[parser.line - 1]! + parser.columnIndex;
  let error: CplError | undefined;
  const fail = (pos: CplPosition, message: string): void => {
    error ??= { ...pos, message };
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let elements = 0;
  let tagStart = 0;

  parser.on('error', (e) => {
    // saxes prefixes "line:column: "; its column is the 0-based index after the offending character, which is the
    // 1-based column of that character.
    fail({ line: parser.line, column: Math.max(1, parser.column) }, e.message.replace(/^\d+:\d+: /, ''));
  });
  parser.on('doctype', () => fail(positionOf(cursor()), 'a DOCTYPE is not allowed in a CPL script'));
  parser.on('opentagstart', () => {
    tagStart = text.lastIndexOf('<', cursor() - 1);
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (error) return;
    const pos = positionOf(tagStart);
    if (++elements > limits.maxElements) return fail(pos, `script has more than ${limits.maxElements} elements`);
    if (stack.length >= limits.maxDepth) return fail(pos, `elements nest deeper than ${limits.maxDepth} levels`);
    const source = text.slice(tagStart, cursor());
    const element: XmlElement = {
      local: tag.local,
      uri: tag.uri,
      name: tag.name,
      pos,
      attributes: Object.values(tag.attributes)
        .filter((a) => a.uri !== XMLNS_URI)
        .map((a) => ({ element: tag.local, local: a.local, uri: a.uri, name: a.name, value: a.value, pos: attributePosition(source, a.name, tagStart) })),
      children: [],
    };
    if (stack.length > 0) stack[stack.length - 1]!.children.push(element);
    else root = element;
    stack.push(element);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  // Character data is reported once it ends: `start` finds where it began in the source (entity references make
  // the source longer than the data, so the column may then be a little off; the line is right).
  const onText = (data: string, start: (end: number) => number): void => {
    const top = stack[stack.length - 1];
    if (!top || top.textPos) return;
    const offset = data.search(/\S/);
    if (offset >= 0) top.textPos = positionOf(Math.max(0, start(cursor()) + offset));
  };
  parser.on('text', (data) => onText(data, (end) => text.lastIndexOf('<', end - 1) - data.length));
  parser.on('cdata', (data) => onText(data, (end) => text.lastIndexOf('<![CDATA[', end - 1) + 9));

  function attributePosition(source: string, name: string, base: number): CplPosition {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const m = new RegExp(`\\s(${escaped})\\s*=`).exec(source);
    return positionOf(base + (m ? m.index + 1 : 0));
  }

  try {
    parser.write(text).close();
  } catch (e) {
    fail({ line: parser.line, column: Math.max(1, parser.column) }, (e as Error).message.replace(/^\d+:\d+: /, ''));
  }
  if (error) return { ok: false, error };
  if (!root) return { ok: false, error: { line: 1, column: 1, message: 'document has no root element' } };
  return { ok: true, root };
}
