/**
 * JsSIP (npm `jssip`, a browser SIP stack over WebSocket) in headless Debian Chromium on a lab host: Chromium gives it
 * the WebRTC it needs for calls (fake microphone), and the test drives it through the Chrome DevTools protocol over
 * a pipe (--remote-debugging-pipe: no port to reach inside the namespace). The page is served by the DevTools Fetch
 * domain as http://127.0.0.1/ (a secure context, as getUserMedia requires) without any HTTP server. Every WebSocket
 * frame JsSIP sends or receives is reported, so a test sees JsSIP's SIP trace.
 *
 * JsSIP 3.13 ships CommonJS sources only; `jssipBundle` joins them (with `debug`, `events`, `sdp-transform`) into
 * one browser script, resolving `require` calls the way a bundler would (the package.json `browser` field first).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { projectRoot } from './paths.js';
import { requireTool } from './process.js';
import type { NetHost } from './netns.js';

/** One browser script defining `window.JsSIP` from node_modules/jssip. */
export function jssipBundle(): string {
  const entry = path.join(projectRoot, 'node_modules', 'jssip', 'lib', 'JsSIP.js');
  if (!existsSync(entry)) throw new Error('node_modules/jssip is missing (a devDependency: run npm ci)');
  const ids = new Map<string, number>();
  const modules: Array<{ code: string; deps: Record<string, number> }> = [];
  const visit = (file: string): number => {
    const known = ids.get(file);
    if (known !== undefined) return known;
    const id = modules.length;
    ids.set(file, id);
    const source = readFileSync(file, 'utf8');
    const mod = { code: file.endsWith('.json') ? `module.exports = ${source};` : source, deps: {} as Record<string, number> };
    modules.push(mod);
    if (!file.endsWith('.json')) {
      for (const m of source.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) mod.deps[m[1]!] = visit(resolveModule(m[1]!, path.dirname(file)));
    }
    return id;
  };
  visit(entry);
  const defs = modules.map((m) => `[function (module, exports, require) {\n${m.code}\n}, ${JSON.stringify(m.deps)}]`).join(',\n');
  return `(function () {
const defs = [${defs}];
const cache = [];
function load(id) {
  if (cache[id]) return cache[id].exports;
  const module = (cache[id] = { exports: {} });
  const [fn, deps] = defs[id];
  fn.call(module.exports, module, module.exports, (name) => {
    if (!(name in deps)) throw new Error('jssip bundle: unresolved require ' + name);
    return load(deps[name]);
  });
  return module.exports;
}
window.JsSIP = load(0);
})();`;
}

function resolveModule(spec: string, fromDir: string): string {
  if (spec.startsWith('.')) return resolveFile(path.resolve(fromDir, spec));
  const [scopeOrName, maybeName] = spec.split('/');
  const name = scopeOrName!.startsWith('@') ? `${scopeOrName}/${maybeName}` : scopeOrName!;
  const rest = spec.slice(name.length + 1);
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(pkgDir, 'package.json'))) {
      if (rest) return resolveFile(path.join(pkgDir, rest));
      const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { browser?: unknown; main?: string };
      const main = typeof pkg.browser === 'string' ? pkg.browser : (pkg.main ?? 'index.js');
      return resolveFile(path.join(pkgDir, main));
    }
    if (path.dirname(dir) === dir) throw new Error(`jssip bundle: cannot resolve '${spec}' from ${fromDir}`);
  }
}

function resolveFile(base: string): string {
  for (const candidate of [base, `${base}.js`, `${base}.json`, path.join(base, 'index.js')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new Error(`jssip bundle: no file for ${base}`);
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

const MAX_LOG = 1 << 20;

/** Headless Chromium on a lab host, driven over the DevTools pipe. */
export class Chromium {
  private nextId = 0;
  private buffer = '';
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<(m: CdpMessage) => void>();
  private log = '';
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly toBrowser: Writable,
    fromBrowser: Readable,
  ) {
    fromBrowser.on('data', (c: Buffer) => this.receive(c.toString()));
    fromBrowser.on('error', () => {});
    toBrowser.on('error', () => {});
    const append = (c: Buffer): void => {
      if (this.log.length < MAX_LOG) this.log += c.toString();
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    this.exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', () => resolve())));
    child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited (${code}):\n${this.log.slice(-3000)}`));
      this.pending.clear();
    });
  }

  /**
   * Starts chromium on `host` with a fresh profile in `dir` (fake microphone, auto-granted media permission). Its
   * HOME is `dir/home`, whose NSS database (where Chromium on Linux takes the trust anchors a user added) trusts
   * `caFile` when given, so that the page's wss:// connection verifies the server's certificate like any other.
   */
  static launch(host: NetHost, dir: string, caFile?: string): Chromium {
    const binary = requireTool('chromium', 'chromium');
    const home = path.join(dir, 'home');
    mkdirSync(home, { recursive: true });
    if (caFile) trustCa(home, caFile);
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      // Host candidates as IP addresses (not mDNS names, which baresip cannot resolve); and the page, served as
      // http://127.0.0.1 for a secure context, may open its WebSocket to the lab's private addresses without the
      // local-network-access prompt nobody would answer.
      '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks',
      `--user-data-dir=${path.join(dir, 'profile')}`,
      '--remote-debugging-pipe',
      'about:blank',
    ];
    const child = host.spawn(binary, args, { cwd: dir, env: { ...process.env, HOME: home }, stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
    return new Chromium(child, child.stdio[3] as Writable, child.stdio[4] as Readable);
  }

  /** Sends a DevTools command (to the browser, or to the page attached as `sessionId`) and waits for its result. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string, timeoutMs = 15000): Promise<Record<string, unknown>> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`chromium: no answer to ${method} within ${timeoutMs} ms\n${this.log.slice(-3000)}`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    });
  }

  /** Calls `listener` for every DevTools event until the returned function is called. */
  onEvent(listener: (m: CdpMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  output(): string {
    return this.log;
  }

  /** Closes the browser (Browser.close, then SIGKILL), bounded; always resolves. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await this.send('Browser.close', {}, undefined, 2000).catch(() => undefined);
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(kill);
  }

  private receive(text: string): void {
    this.buffer += text;
    for (let end = this.buffer.indexOf('\0'); end >= 0; end = this.buffer.indexOf('\0')) {
      const raw = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      let msg: CdpMessage;
      try {
        msg = JSON.parse(raw) as CdpMessage;
      } catch {
        continue;
      }
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`chromium: ${msg.error.message}`));
        else p?.resolve(msg.result ?? {});
      } else {
        for (const l of [...this.listeners]) l(msg);
      }
    }
  }
}

/** A new NSS database in `home/.pki/nssdb` trusting `caFile` to issue server certificates (certutil, libnss3-tools). */
function trustCa(home: string, caFile: string): void {
  const certutil = requireTool('certutil', 'libnss3-tools');
  const db = `sql:${path.join(home, '.pki', 'nssdb')}`;
  mkdirSync(path.join(home, '.pki', 'nssdb'), { recursive: true });
  execFileSync(certutil, ['-N', '-d', db, '--empty-password'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
  execFileSync(certutil, ['-A', '-d', db, '-n', 'sipway test CA', '-t', 'C,,', '-i', caFile], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
}

/** What the page reports: JsSIP UA and session events, and every WebSocket frame (`ws-in`, `ws-out`). */
export interface JsSipEvent {
  type: string;
  originator?: string;
  cause?: string;
  data?: string;
  [key: string]: unknown;
}

export interface JsSipAccount {
  /** e.g. `sip:walt@sipway.test`. */
  uri: string;
  password: string;
  /** e.g. `ws://10.213.0.1:8080`. */
  wsUrl: string;
  /** Answer incoming calls at once. */
  autoAnswer?: boolean;
  /**
   * Leave `gruu` out of the REGISTER's Supported, so the registrar grants no GRUU and JsSIP's dialogs carry its own
   * Contact, `sip:<random>@<random>.invalid;transport=ws` (as with a registrar without GRUU). Default true.
   */
  withoutGruu?: boolean;
}

const PAGE_ORIGIN = 'http://127.0.0.1';

/**
 * The page's controller: wraps WebSocket to report frames, starts a JsSIP UA with JsSIP's defaults (Contact
 * `sip:<random>@<random>.invalid;transport=ws`, no GRUU, no Outbound), and reports its events.
 */
const CONTROLLER = `
window.sipEvents = [];
function report(ev) { window.reportEvent(JSON.stringify(ev)); }
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (e) => report({ type: 'ws-in', data: String(e.data) }));
  }
  send(data) {
    if (window.withoutGruu && /^REGISTER /.test(data)) data = data.replace(/^Supported:.*$/m, (line) => line.replace(/gruu,?/, '').replace(/,\\s*$/, ''));
    report({ type: 'ws-out', data: String(data) });
    super.send(data);
  }
};
window.startPhone = function (account) {
  window.withoutGruu = account.withoutGruu !== false;
  const socket = new JsSIP.WebSocketInterface(account.wsUrl);
  const ua = new JsSIP.UA({ sockets: [socket], uri: account.uri, password: account.password, register: true, session_timers: false });
  window.ua = ua;
  for (const name of ['connected', 'disconnected', 'registered', 'unregistered', 'registrationFailed']) {
    ua.on(name, (e) => report({ type: name, cause: e && e.cause }));
  }
  ua.on('newRTCSession', (e) => {
    const session = e.session;
    window.session = session;
    report({ type: 'newRTCSession', originator: e.originator });
    for (const name of ['progress', 'accepted', 'confirmed', 'ended', 'failed', 'hold', 'unhold']) {
      session.on(name, (ev) => report({ type: name, originator: ev && ev.originator, cause: ev && ev.cause }));
    }
    for (const name of ['peerconnection:createofferfailed', 'peerconnection:createanswerfailed', 'peerconnection:setlocaldescriptionfailed', 'peerconnection:setremotedescriptionfailed']) {
      session.on(name, (error) => report({ type: name, cause: String(error) }));
    }
    session.on('peerconnection', (ev) => {
      ev.peerconnection.addEventListener('iceconnectionstatechange', () => report({ type: 'ice', state: ev.peerconnection.iceConnectionState }));
    });
    if (e.originator === 'remote' && account.autoAnswer) session.answer({ mediaConstraints: { audio: true, video: false } });
  });
  ua.start();
};
window.call = function (target) {
  window.ua.call(target, { mediaConstraints: { audio: true, video: false } });
};
window.hangup = function () { window.session.terminate(); };
window.hold = function () { window.session.hold(); };
window.unhold = function () { window.session.unhold(); };
`;

/** A JsSIP phone in its own Chromium on a lab host. */
export class JsSipPhone {
  readonly events: JsSipEvent[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly name: string,
    private readonly browser: Chromium,
    private readonly sessionId: string,
  ) {}

  /** Starts Chromium on `host` and JsSIP in its page; with `caFile` the browser trusts that CA (for wss://). */
  static async start(name: string, host: NetHost, dir: string, account: JsSipAccount, caFile?: string): Promise<JsSipPhone> {
    const browser = Chromium.launch(host, dir, caFile);
    try {
      const { targetInfos } = (await browser.send('Target.getTargets')) as { targetInfos: Array<{ targetId: string; type: string }> };
      const page = targetInfos.find((t) => t.type === 'page');
      if (!page) throw new Error('chromium: no page target');
      const { sessionId } = (await browser.send('Target.attachToTarget', { targetId: page.targetId, flatten: true })) as { sessionId: string };
      const phone = new JsSipPhone(name, browser, sessionId);
      const html = `<!doctype html><html><head><meta charset="utf-8"><script src="/jssip.js"></script><script src="/controller.js"></script></head><body>${name}</body></html>`;
      const files: Record<string, { type: string; body: string }> = {
        '/': { type: 'text/html', body: html },
        '/jssip.js': { type: 'text/javascript', body: jssipBundle() },
        '/controller.js': { type: 'text/javascript', body: CONTROLLER },
      };
      // Anything else (the browser's favicon request) gets 204, so that no error entry muddles the page's log.
      browser.onEvent((m) => {
        if (m.sessionId !== sessionId) return;
        if (m.method === 'Fetch.requestPaused') {
          const { requestId, request } = m.params as { requestId: string; request: { url: string } };
          const file = files[new URL(request.url).pathname];
          const reply = file
            ? { requestId, responseCode: 200, responseHeaders: [{ name: 'Content-Type', value: file.type }], body: Buffer.from(file.body).toString('base64') }
            : { requestId, responseCode: 204, responseHeaders: [], body: '' };
          void browser.send('Fetch.fulfillRequest', reply, sessionId).catch(() => undefined);
        } else if (m.method === 'Runtime.bindingCalled') {
          const { name: binding, payload } = m.params as { name: string; payload: string };
          if (binding === 'reportEvent') phone.record(JSON.parse(payload) as JsSipEvent);
        } else if (m.method === 'Runtime.exceptionThrown' || m.method === 'Log.entryAdded' || (m.method === 'Runtime.consoleAPICalled' && (m.params as { type?: string }).type === 'error')) {
          phone.record({ type: 'page-error', data: JSON.stringify(m.params).slice(0, 2000) });
        }
      });
      await browser.send('Runtime.enable', {}, sessionId);
      await browser.send('Log.enable', {}, sessionId);
      await browser.send('Runtime.addBinding', { name: 'reportEvent' }, sessionId);
      await browser.send('Fetch.enable', { patterns: [{ urlPattern: `${PAGE_ORIGIN}/*` }] }, sessionId);
      await browser.send('Page.enable', {}, sessionId);
      await browser.send('Page.navigate', { url: `${PAGE_ORIGIN}/` }, sessionId);
      await phone.until(`typeof startPhone === 'function'`, 10000);
      await phone.evaluate(`startPhone(${JSON.stringify(account)})`);
      return phone;
    } catch (e) {
      await browser.stop();
      throw e;
    }
  }

  /** Evaluates `expression` in the page (awaiting a promise) and returns its value. */
  async evaluate(expression: string): Promise<unknown> {
    const r = (await this.browser.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, this.sessionId)) as { result?: { value?: unknown }; exceptionDetails?: unknown };
    if (r.exceptionDetails) throw new Error(`${this.name}: page threw on ${expression}: ${JSON.stringify(r.exceptionDetails).slice(0, 1500)}`);
    return r.result?.value;
  }

  /** Dials `target` (e.g. `sip:bob@sipway.test`) with audio. */
  async call(target: string): Promise<void> {
    await this.evaluate(`call(${JSON.stringify(target)})`);
  }

  /** Ends the current call (BYE once confirmed, CANCEL or a rejection before). */
  async hangup(): Promise<void> {
    await this.evaluate('hangup()');
  }

  /** Puts the current call on hold (a re-INVITE with a=sendonly) or takes it back (a=sendrecv). */
  async hold(on: boolean): Promise<void> {
    await this.evaluate(on ? 'hold()' : 'unhold()');
  }

  /** Resolves with the first event (already received or future) of `type` that `match` accepts. */
  async waitForEvent(type: string, timeoutMs: number, match: (e: JsSipEvent) => boolean = () => true): Promise<JsSipEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.type === type && match(e));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`jssip ${this.name}: no ${type} event within ${timeoutMs} ms (events: ${this.events.filter((e) => !e.type.startsWith('ws-')).map((e) => e.type).join(', ') || 'none'})`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  /** JsSIP's SIP trace (every WebSocket frame, in order) and the page's errors, for failure messages. */
  output(): string {
    return this.events
      .map((e) => (e.type === 'ws-in' ? `<<< received\n${e.data}` : e.type === 'ws-out' ? `>>> sent\n${e.data}` : `[${e.type}] ${JSON.stringify(e)}`))
      .join('\n');
  }

  async stop(): Promise<void> {
    await this.evaluate('window.ua && window.ua.stop()').catch(() => undefined);
    await this.browser.stop();
  }

  private async until(expression: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await this.evaluate(expression).catch(() => false);
      if (ok === true) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: page never reached ${expression} within ${timeoutMs} ms\n${this.output()}\n${this.browser.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private record(e: JsSipEvent): void {
    this.events.push(e);
    for (const wake of [...this.waiters]) wake();
  }
}
