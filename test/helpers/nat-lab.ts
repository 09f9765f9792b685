/**
 * A two-NAT lab for the SBC's real-client tests (issue 18): sipway on a "public" network 10.215.0.0/24 (host `srv`,
 * 10.215.0.1), and two home networks, each behind its own NAT router doing iptables MASQUERADE with random source
 * ports: home A 192.168.10.0/24 behind 10.215.0.101, home B 192.168.20.0/24 behind 10.215.0.102. Public hosts have no
 * route into either home network, and the homes none into each other: a phone is reached only through its NAT
 * mapping, and RTP sent to a private address in an SDP goes nowhere.
 *
 * Also: baresip phones whose account is made with `uanew` after `insmod` of the modules a test needs (sndfile to
 * record what each call decodes, srtp for SDES-SRTP), each playing a WAV file of its own as its audio source; a
 * tcpdump capture with a free filter (SIP and RTP of a phone); tone sequences to play and to find again in a
 * recording.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { labOrSkip, type NetHost, type NetLab } from './netns.js';
import { runCli, startCliServer, type RunningServer } from './process.js';
import { Baresip } from './baresip.js';
// The edge tests' lab conventions (domain, step bound, waiting for a registration) serve the NAT lab as they are.
import { DOMAIN } from '../edge/lab.js';
export { DOMAIN, registered, STEP_MS } from '../edge/lab.js';

export const SERVER = '10.215.0.1';
export const SIP_PORT = 5060;
export const HOMES = {
  a: { outside: '10.215.0.101', inside: '192.168.10.1', prefix: '192.168.10.' },
  b: { outside: '10.215.0.102', inside: '192.168.20.1', prefix: '192.168.20.' },
} as const;
export type Home = keyof typeof HOMES;
export interface TwoNatLab {
  lab: NetLab;
  srv: NetHost;
  work: string;
  /** Host `name` at 192.168.x.`n` in home `home`, behind that home's NAT. */
  homeHost(home: Home, name: string, n: number): NetHost;
}

/** Runs `body` in a fresh two-NAT lab and a temporary directory (skipped where labs cannot be made); always cleans up. */
export async function inTwoNatLab(t: TestContext, body: (l: TwoNatLab) => Promise<void>): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-sbc-nat-'));
  let lab: NetLab | undefined;
  try {
    lab = labOrSkip(t);
    if (!lab) return;
    lab.network('public');
    const srv = lab.host('srv', [{ network: 'public', address: SERVER }]);
    for (const [home, h] of Object.entries(HOMES)) {
      lab.network(`home-${home}`);
      lab.nat(`nat-${home}`, { network: 'public', address: h.outside }, { network: `home-${home}`, address: h.inside });
    }
    const l = lab;
    await body({
      lab: l,
      srv,
      work,
      homeHost: (home, name, n) => l.host(name, [{ network: `home-${home}`, address: `${HOMES[home].prefix}${n}` }], HOMES[home].inside),
    });
  } finally {
    await lab?.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

export interface SipwayInLab {
  server: RunningServer;
  data: string;
}

/**
 * `sipway serve` on `srv` (UDP on SERVER:5060) with users `<name>@sipway.test` (password `<name>-pw`, digest MD5,
 * which baresip 1.0 needs), the given `sbc` settings and any other `settings` of the config file.
 */
export async function startSipway(l: TwoNatLab, users: string[], sbc: Record<string, unknown>, extraArgs: string[] = [], settings: Record<string, unknown> = {}): Promise<SipwayInLab> {
  const data = path.join(l.work, 'data');
  for (const user of users) {
    const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', `${user}-pw`, '--data', data]);
    assert.equal(r.status, 0, r.stderr);
  }
  const config = path.join(l.work, 'sipway.json');
  writeFileSync(config, JSON.stringify({ auth: { algorithms: ['MD5'] }, sbc, ...settings }));
  const args = ['--config', config, '--domain', DOMAIN, '--data', data, '--log-level', 'debug', '--listen', `udp:${SERVER}:${SIP_PORT}`, ...extraArgs];
  const server = await startCliServer(args, 20000, { host: l.srv });
  return { server, data };
}

export interface NatPhone {
  b: Baresip;
  host: NetHost;
  user: string;
  dir: string;
  /** The tone sequence it plays (its audio source). */
  tones: ToneSequence;
}

/**
 * A baresip on `host` registered at sipway through its NAT (digest auth, sipway as outbound proxy), answering at
 * once, playing `tones` as its audio source and recording every call (module sndfile: `dump-*-dec.wav` in its
 * directory is what it decoded, i.e. what it heard). `mediaenc` (e.g. `srtp-mand`) loads the srtp module first.
 */
export async function natPhone(l: TwoNatLab, host: NetHost, user: string, tones: ToneSequence, mediaenc?: string): Promise<NatPhone> {
  const dir = path.join(l.work, user);
  mkdirSync(dir, { recursive: true });
  const wav = path.join(dir, 'tones.wav');
  writeFileSync(wav, toneWav(tones));
  // The helper's own account (`idle`, never registering) only lets baresip start; the real one is made after the modules.
  const b = await Baresip.start(user, dir, { user: 'idle', domain: DOMAIN, regint: 0 }, 10000, { host });
  try {
    for (const m of ['sndfile', ...(mediaenc ? ['srtp'] : [])]) {
      const r = await b.command('insmod', `${m}.so`);
      assert.ok(r.ok && /loaded module/.test(r.data ?? ''), `baresip ${user}: insmod ${m}: ${JSON.stringify(r)}`);
    }
    const params = [
      `auth_user=${user}`,
      `auth_pass=${user}-pw`,
      `outbound="sip:${SERVER}:${SIP_PORT};transport=udp"`,
      'answermode=auto',
      'regint=600',
      'audio_codecs=pcmu',
      'mwi=no',
      `audio_source=aufile,${wav}`,
      ...(mediaenc ? [`mediaenc=${mediaenc}`] : []),
    ];
    const made = await b.command('uanew', `<sip:${user}@${DOMAIN};transport=udp>;${params.join(';')}`);
    assert.ok(made.ok, `baresip ${user}: uanew: ${JSON.stringify(made)}`);
    assert.ok((await b.command('uadel', `sip:idle@${DOMAIN}`)).ok, `baresip ${user}: uadel idle`);
  } catch (e) {
    await b.stop();
    throw new Error(`${(e as Error).message}\n--- baresip ${user} ---\n${b.output().slice(-4000)}`, { cause: e });
  }
  return { b, host, user, dir, tones };
}

/** The WAV files sndfile wrote in a phone's directory: what it decoded (heard) in each call, oldest first. */
export function recordings(phone: NatPhone): string[] {
  return readdirSync(phone.dir)
    .filter((f) => /^dump-.*-dec\.wav$/.test(f))
    .sort()
    .map((f) => path.join(phone.dir, f));
}

// ---------------------------------------------------------------------------------------------------------------
// Tone sequences: a pseudo-random sequence of 200 ms tones from a set of four frequencies. A recording of it is
// recognised by decoding its 100 ms windows to the dominant frequency (Goertzel) and finding the offset in the
// played sequence where most windows match: content and order of what was played, not merely "some audio".

export interface ToneSequence {
  frequencies: readonly number[];
  /** Index into `frequencies`, one per 200 ms symbol. */
  symbols: number[];
}

const RATE = 8000;
const SYMBOL = RATE / 5; // 200 ms
const WINDOW = RATE / 10; // 100 ms

/** `seconds` of tones from `frequencies`, in an order given by `seed`. */
export function toneSequence(frequencies: readonly number[], seed: number, seconds = 90): ToneSequence {
  let x = seed >>> 0;
  const symbols: number[] = [];
  for (let i = 0; i < seconds * 5; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    symbols.push((x >>> 16) % frequencies.length);
  }
  return { frequencies, symbols };
}

/** The sequence as an 8 kHz mono 16-bit WAV (aufile in baresip 1.0 takes only the codec's rate). */
export function toneWav(seq: ToneSequence): Buffer {
  const samples = Buffer.alloc(seq.symbols.length * SYMBOL * 2);
  let phase = 0;
  seq.symbols.forEach((s, i) => {
    const f = seq.frequencies[s]!;
    for (let n = 0; n < SYMBOL; n++) {
      phase += (2 * Math.PI * f) / RATE;
      samples.writeInt16LE(Math.round(8000 * Math.sin(phase)), (i * SYMBOL + n) * 2);
    }
  });
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + samples.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(RATE, 24);
  h.writeUInt32LE(RATE * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(samples.length, 40);
  return Buffer.concat([h, samples]);
}

/** The 16-bit mono samples of a WAV file (its `data` chunk). */
export function wavSamples(file: string): Int16Array {
  const buf = readFileSync(file);
  let at = 12;
  while (at + 8 <= buf.length) {
    const id = buf.toString('latin1', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    if (id === 'data') {
      const end = Math.min(buf.length, at + 8 + size);
      const out = new Int16Array(Math.floor((end - at - 8) / 2));
      for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(at + 8 + i * 2);
      return out;
    }
    at += 8 + size + (size & 1);
  }
  return new Int16Array(0);
}

function goertzel(x: Int16Array, from: number, n: number, f: number): number {
  const k = 2 * Math.cos((2 * Math.PI * f) / RATE);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s = x[from + i]! + k * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return s1 * s1 + s2 * s2 - k * s1 * s2;
}

export interface ToneMatch {
  /** Windows of 100 ms analysed (those with sound in them). */
  windows: number;
  /** Share of windows whose dominant frequency is the played symbol's at the best offset. */
  matched: number;
  /** Share of the windows' energy in the four frequencies of `seq` (against `others`, the far side's own four). */
  inBand: number;
  /** Share of the windows' energy at the frequencies in `others` (e.g. the listener's own tones: an echo or a loop). */
  foreign: number;
}

/**
 * How well `samples[from, from+seconds)` is the sequence `seq` as played: each 100 ms window's dominant frequency,
 * matched against the played symbols at the best offset: window 0 is any 100 ms step of the first `maxOffsetS` of the
 * sequence (default: 5 s past `fromS`, for a recording that starts with the call, as the playing does). By chance alone
 * (another sequence of the same tones) some 0.4 of 40 windows match at the best of 50 offsets.
 */
export function matchTones(samples: Int16Array, seq: ToneSequence, others: readonly number[], fromS: number, seconds: number, maxOffsetS = fromS + 5): ToneMatch {
  const first = Math.floor(fromS * 10);
  const count = Math.min(Math.floor(samples.length / WINDOW) - first, seconds * 10);
  const detected: number[] = [];
  let inBand = 0;
  let foreign = 0;
  for (let w = 0; w < count; w++) {
    const at = (first + w) * WINDOW;
    const powers = seq.frequencies.map((f) => goertzel(samples, at, WINDOW, f));
    const otherPower = others.reduce((sum, f) => sum + goertzel(samples, at, WINDOW, f), 0);
    const total = powers.reduce((a, b) => a + b, 0);
    if (total + otherPower < 1e9) {
      detected.push(-1); // silence (or nearly): no symbol
      continue;
    }
    inBand += total / (total + otherPower);
    foreign += otherPower / (total + otherPower);
    detected.push(powers.indexOf(Math.max(...powers)));
  }
  const voiced = detected.filter((d) => d >= 0).length;
  let best = 0;
  // Offsets in 100 ms steps: window w at offset o is in symbol floor((o + w) / 2).
  for (let o = 0; o <= maxOffsetS * 10; o++) {
    let hits = 0;
    detected.forEach((d, w) => {
      if (d >= 0 && d === seq.symbols[Math.floor((o + w) / 2)]) hits++;
    });
    best = Math.max(best, hits);
  }
  return { windows: voiced, matched: voiced === 0 ? 0 : best / voiced, inBand: voiced === 0 ? 0 : inBand / voiced, foreign: voiced === 0 ? 0 : foreign / voiced };
}

// ---------------------------------------------------------------------------------------------------------------
// Captures

/** A capture on a lab host (tcpdump, read back with tshark): wire.ts's, with any BPF filter. */
export { UdpCapture as Capture, type Datagram as Packet } from './wire.js';

/** Shannon entropy of a byte string, bits per byte (8 for random bytes; a PCMU tone is far below). */
export function entropy(bytes: Buffer[]): number {
  const counts = new Array<number>(256).fill(0);
  let n = 0;
  for (const b of bytes) for (const x of b) {
    counts[x]!++;
    n++;
  }
  return counts.reduce((h, c) => (c === 0 ? h : h - (c / n) * Math.log2(c / n)), 0);
}
