import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** A notification a CPL `mail` node asks for (RFC 3880 §7.1). */
export interface MailMessage {
  to: string[];
  cc: string[];
  subject: string;
  body: string;
}

/** Where `mail` nodes go: an SMTP relay in production, a log (or an array) in tests. */
export type CplMailer = (message: MailMessage) => void;

const ADDRESS = /^[^\s<>()[\],;:"@\\]+@[^\s<>()[\],;:"@\\]+$/;

/**
 * Reads a mailto URL (RFC 6068): recipients, and the `to`, `cc`, `subject` and `body` fields. Other header
 * fields are ignored on purpose: a script's author must not be able to set arbitrary headers (or Bcc) of mail
 * the server sends. `defaults` supply the subject and body the URL leaves out (typically a description of the
 * call). Returns undefined for a URL without a valid recipient.
 */
export function parseMailto(url: string, defaults: { subject: string; body: string }): MailMessage | undefined {
  const m = /^mailto:([^?]*)(?:\?(.*))?$/is.exec(url);
  if (!m) return undefined;
  const decode = (s: string): string | undefined => {
    try {
      return decodeURIComponent(s);
    } catch {
      return undefined;
    }
  };
  const list = (s: string): string[] => s.split(',').map((a) => decode(a.trim()) ?? '').filter((a) => a !== '');
  const message: MailMessage = { to: list(m[1]!), cc: [], subject: defaults.subject, body: defaults.body };
  for (const field of (m[2] ?? '').split('&')) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    const name = field.slice(0, eq).toLowerCase();
    const value = decode(field.slice(eq + 1));
    if (value === undefined) continue;
    if (name === 'to') message.to.push(...list(field.slice(eq + 1)));
    else if (name === 'cc') message.cc.push(...list(field.slice(eq + 1)));
    else if (name === 'subject') message.subject = value;
    else if (name === 'body') message.body = value;
  }
  message.to = message.to.filter((a) => ADDRESS.test(a));
  message.cc = message.cc.filter((a) => ADDRESS.test(a));
  return message.to.length > 0 ? message : undefined;
}

export interface SmtpRelayOptions {
  host: string;
  port?: number;
  /** Envelope and header sender. */
  from: string;
  /** The name this server gives in EHLO and in Message-IDs. */
  heloName?: string;
  /** Inactivity limit of one SMTP conversation. */
  timeoutMs?: number;
  /** Messages waiting beyond this are dropped (and reported): a mail storm must not grow memory without bound. */
  maxQueue?: number;
  /** Told about each message that could not be delivered. */
  onError?: (err: Error, message: MailMessage) => void;
}

/**
 * Delivers notifications through an SMTP relay (RFC 5321), one at a time, in the background: a CPL script never
 * waits for mail. No authentication or TLS: the relay is expected to be the local MTA or a trusted smarthost.
 */
export class SmtpRelayMailer {
  private readonly queue: MailMessage[] = [];
  private sending: Promise<void> | undefined;

  constructor(private readonly options: SmtpRelayOptions) {
    if (!ADDRESS.test(options.from)) throw new Error(`SMTP sender '${options.from}' is not an e-mail address`);
  }

  /** A CplMailer bound to this relay. */
  readonly send: CplMailer = (message) => {
    if (this.queue.length >= (this.options.maxQueue ?? 100)) {
      this.options.onError?.(new Error('mail queue is full; message dropped'), message);
      return;
    }
    this.queue.push(message);
    this.sending ??= this.drain();
  };

  /** Resolves when every queued message has been tried. */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async drain(): Promise<void> {
    for (let m = this.queue.shift(); m; m = this.queue.shift()) {
      try {
        await this.deliver(m);
      } catch (err) {
        this.options.onError?.(err as Error, m);
      }
    }
    this.sending = undefined;
  }

  private async deliver(message: MailMessage): Promise<void> {
    const o = this.options;
    const helo = o.heloName ?? 'sipway';
    const socket = net.connect(o.port ?? 25, o.host);
    const replies = new ReplyReader(socket, o.timeoutMs ?? 10_000);
    const command = async (line: string | undefined, ...expected: number[]): Promise<number> => {
      if (line !== undefined) socket.write(line + '\r\n');
      const code = await replies.next();
      if (!expected.includes(code)) throw new Error(`SMTP relay answered ${code} to ${line?.split(' ')[0] ?? 'the connection'}`);
      return code;
    };
    try {
      await command(undefined, 220);
      // Old relays only know HELO (RFC 5321 §4.1.1.1).
      if ((await command(`EHLO ${helo}`, 250, 500, 502)) !== 250) await command(`HELO ${helo}`, 250);
      await command(`MAIL FROM:<${o.from}>`, 250);
      for (const rcpt of [...message.to, ...message.cc]) await command(`RCPT TO:<${rcpt}>`, 250, 251);
      await command('DATA', 354);
      await command(compose(message, o.from, helo) + '\r\n.', 250);
      await command('QUIT', 221);
    } finally {
      socket.destroy();
    }
  }
}

/** The message text (RFC 5322), dot-stuffed for DATA (RFC 5321 §4.5.2). */
function compose(m: MailMessage, from: string, helo: string): string {
  const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ');
  // Non-ASCII subjects are encoded words (RFC 2047).
  const subject = /^[\x20-\x7e]*$/.test(m.subject) ? oneLine(m.subject) : `=?UTF-8?B?${Buffer.from(oneLine(m.subject)).toString('base64')}?=`;
  const headers = [
    `From: <${from}>`,
    `To: ${m.to.map((a) => `<${a}>`).join(', ')}`,
    ...(m.cc.length > 0 ? [`Cc: ${m.cc.map((a) => `<${a}>`).join(', ')}`] : []),
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${helo}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  const body = m.body.split(/\r?\n/).map((line) => (line.startsWith('.') ? '.' + line : line));
  return [...headers, '', ...body].join('\r\n');
}

/** Reads SMTP replies (multi-line ones end with "NNN " rather than "NNN-") and hands out their codes. */
class ReplyReader {
  private buffer = '';
  private readonly codes: number[] = [];
  private waiter: { resolve: (code: number) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(socket: net.Socket, timeoutMs: number) {
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('SMTP relay timed out')));
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl).replace(/\r$/, '');
        this.buffer = this.buffer.slice(nl + 1);
        const m = /^(\d{3})([ -]|$)/.exec(line);
        if (!m) this.fail(new Error(`SMTP relay sent a malformed reply: ${line.slice(0, 80)}`));
        else if (m[2] !== '-') this.push(Number(m[1]));
      }
      if (this.buffer.length > 4096) this.fail(new Error('SMTP relay sent an over-long line'));
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('SMTP relay closed the connection')));
  }

  next(): Promise<number> {
    const code = this.codes.shift();
    if (code !== undefined) return Promise.resolve(code);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private push(code: number): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w.resolve(code);
    else this.codes.push(code);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }
}
