/** RIFF/WAVE files of 16-bit PCM, mono, 8 kHz: what G.711 carries without resampling. */

export class WavFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WavFormatError';
  }
}

/** The samples of a 16-bit PCM mono 8,000 Hz WAV file; anything else is refused naming what it is. */
export function readWav(bytes: Buffer): Int16Array {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') {
    throw new WavFormatError('not a RIFF/WAVE file');
  }
  let pos = 12;
  let format: { channels: number; rate: number; bits: number; tag: number } | undefined;
  while (pos + 8 <= bytes.length) {
    const id = bytes.toString('latin1', pos, pos + 4);
    const size = bytes.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (body + size > bytes.length && id !== 'data') throw new WavFormatError(`chunk '${id}' runs past the end of the file`);
    if (id === 'fmt ') {
      if (size < 16) throw new WavFormatError('fmt chunk too short');
      format = { tag: bytes.readUInt16LE(body), channels: bytes.readUInt16LE(body + 2), rate: bytes.readUInt32LE(body + 4), bits: bytes.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!format) throw new WavFormatError('data before the fmt chunk');
      if (format.tag !== 1 || format.bits !== 16 || format.channels !== 1 || format.rate !== 8000) {
        throw new WavFormatError(`${format.channels} channel(s), ${format.rate} Hz, ${format.bits}-bit (format ${format.tag}): need 16-bit PCM, mono, 8000 Hz (sox in.wav -r 8000 -c 1 -b 16 out.wav)`);
      }
      const end = Math.min(bytes.length, body + size);
      const samples = new Int16Array(Math.floor((end - body) / 2));
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(body + 2 * i);
      return samples;
    }
    pos = body + size + (size & 1);
  }
  throw new WavFormatError('no data chunk');
}

export function writeWav(samples: Int16Array): Buffer {
  const data = samples.length * 2;
  const out = Buffer.alloc(44 + data);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(36 + data, 4);
  out.write('WAVE', 8, 'latin1');
  out.write('fmt ', 12, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(8000, 24);
  out.writeUInt32LE(16000, 28); // byte rate
  out.writeUInt16LE(2, 32); // block align
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(data, 40);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, 44 + 2 * i);
  return out;
}
