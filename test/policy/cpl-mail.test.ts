import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type MailMessage, SmtpRelayMailer, parseMailto } from '../../src/policy/cpl/mail.js';

const DEFAULTS = { subject: 'Call from sip:monica@example.net', body: 'She called at 10:00.' };

describe('parseMailto (RFC 6068)', () => {
  it('reads recipients, cc, subject and body; defaults fill in what the URL leaves out', () => {
    assert.deepEqual(parseMailto('mailto:alice@example.com,bob%40example.org?cc=carol@example.com&subject=Missed%20call&body=Line%201%0D%0ALine%202', DEFAULTS), {
      to: ['alice@example.com', 'bob@example.org'],
      cc: ['carol@example.com'],
      subject: 'Missed call',
      body: 'Line 1\r\nLine 2',
    });
    assert.deepEqual(parseMailto('mailto:?to=alice@example.com', DEFAULTS), { to: ['alice@example.com'], cc: [], ...DEFAULTS });
  });

  it('ignores other header fields (no Bcc or arbitrary headers from a script) and refuses URLs without a recipient', () => {
    const m = parseMailto('mailto:alice@example.com?bcc=spy@example.org&X-Injected=1&from=ceo@example.com', DEFAULTS);
    assert.deepEqual(m, { to: ['alice@example.com'], cc: [], ...DEFAULTS });
    assert.equal(parseMailto('mailto:not-an-address', DEFAULTS), undefined);
    assert.equal(parseMailto('mailto:%0D%0ARCPT%20TO:<x@example.org>', DEFAULTS), undefined);
    assert.equal(parseMailto('http://example.com/', DEFAULTS), undefined);
  });
});

/** A loopback SMTP server that records each conversation; RCPT to `refuse` gets 550. */
class FakeRelay {
  readonly sessions: string[][] = [];
  readonly messages: string[] = [];
  refuse = new Set<string>();
  private readonly server = net.createServer((socket) => this.serve(socket));
  private waiters: Array<() => void> = [];

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    const lines: string[] = [];
    this.sessions.push(lines);
    let data: string[] | undefined;
    let buffer = '';
    socket.write('220 relay.test ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      for (let nl = buffer.indexOf('\r\n'); nl >= 0; nl = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        if (data) {
          if (line === '.') {
            this.messages.push(data.join('\r\n'));
            data = undefined;
            socket.write('250 queued\r\n');
          } else data.push(line);
          continue;
        }
        lines.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-relay.test\r\n250 8BITMIME\r\n');
        else if (verb === 'RCPT') socket.write(this.refuse.has(/<(.*)>/.exec(line)![1]!) ? '550 no such user\r\n' : '250 ok\r\n');
        else if (verb === 'DATA') {
          data = [];
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') {
          socket.end('221 bye\r\n');
          this.waiters.splice(0).forEach((w) => w());
        } else socket.write('250 ok\r\n');
      }
    });
  }
}

describe('SmtpRelayMailer', () => {
  let relay: FakeRelay;
  let port: number;
  before(async () => {
    relay = new FakeRelay();
    port = await relay.start();
  });
  after(() => relay.stop());

  const message = (overrides: Partial<MailMessage> = {}): MailMessage => ({ to: ['alice@example.com'], cc: [], subject: 'Missed call', body: 'Hello', ...overrides });

  it('speaks SMTP to the relay: EHLO, envelope, a text/plain message with dot-stuffing and encoded subject', async () => {
    const errors: Error[] = [];
    const mailer = new SmtpRelayMailer({ host: '127.0.0.1', port, from: 'cpl@sipway.example', heloName: 'pbx.example', onError: (e) => errors.push(e) });
    const before = relay.messages.length;
    mailer.send(message({ cc: ['bob@example.com'], subject: 'Appel manqué', body: 'line one\n.hidden dot\nend' }));
    await mailer.flush();
    assert.deepEqual(errors, []);
    const session = relay.sessions[relay.sessions.length - 1]!;
    assert.deepEqual(session, ['EHLO pbx.example', 'MAIL FROM:<cpl@sipway.example>', 'RCPT TO:<alice@example.com>', 'RCPT TO:<bob@example.com>', 'DATA', 'QUIT']);
    const text = relay.messages[before]!;
    assert.match(text, /^From: <cpl@sipway\.example>\r\nTo: <alice@example\.com>\r\nCc: <bob@example\.com>\r\n/);
    assert.match(text, new RegExp(`Subject: =\\?UTF-8\\?B\\?${Buffer.from('Appel manqué').toString('base64').replace(/[+/]/g, '\\$&')}\\?=\\r\\n`));
    assert.match(text, /Content-Type: text\/plain; charset=utf-8\r\n/);
    assert.match(text, /\r\n\r\nline one\r\n\.\.hidden dot\r\nend$/);
  });

  it('reports a refused message and goes on with the next; drops messages beyond the queue bound (the one in flight aside)', async () => {
    relay.refuse.add('nobody@example.com');
    const errors: string[] = [];
    const mailer = new SmtpRelayMailer({ host: '127.0.0.1', port, from: 'cpl@sipway.example', maxQueue: 1, onError: (e, m) => errors.push(`${m.to[0]}: ${e.message}`) });
    const before = relay.messages.length;
    mailer.send(message({ to: ['nobody@example.com'] }));
    mailer.send(message({ to: ['alice@example.com'] }));
    mailer.send(message({ to: ['third@example.com'] }));
    await mailer.flush();
    assert.deepEqual(errors, ['third@example.com: mail queue is full; message dropped', 'nobody@example.com: SMTP relay answered 550 to RCPT']);
    assert.equal(relay.messages.length, before + 1);
  });

  it('reports an unreachable relay without throwing', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const errors: Error[] = [];
    const mailer = new SmtpRelayMailer({ host: '127.0.0.1', port: deadPort, from: 'cpl@sipway.example', onError: (e) => errors.push(e) });
    mailer.send(message());
    await mailer.flush();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /ECONNREFUSED/);
    assert.throws(() => new SmtpRelayMailer({ host: '127.0.0.1', from: 'not an address' }), /not an e-mail address/);
  });
});
