import { readFileSync } from 'node:fs';
import { sharedPath } from './paths.js';

/** One row of a corpus INDEX.tsv: name, section, expected, note. */
export interface IndexEntry {
  name: string;
  section: string;
  expected: string;
  note: string;
}

export function readIndex(corpus: 'rfc4475' | 'rfc5118'): IndexEntry[] {
  const lines = readFileSync(sharedPath('conformance', corpus, 'INDEX.tsv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => {
    const [name, section, expected, note] = l.split('\t');
    return { name: name!, section: section!, expected: expected!, note: note ?? '' };
  });
}

