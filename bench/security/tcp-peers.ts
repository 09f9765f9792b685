/**
 * TCP peers of the security benches (bench:trickle, bench:idle-slowloris): a legitimate client that keeps asking over
 * fresh and kept connections, and attackers whose connections never finish a message.
 */
import net from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let sequence = 0;
export function request(method: 'OPTIONS' | 'REGISTER', port: number, localPort: number): { bytes: string; callId: string } {
  const callId = `legit-${++sequence}@bench`;
  const lines = [
    `${method} sip:bench.test SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:${localPort};branch=z9hG4bK-legit${sequence};rport`,
    'Max-Forwards: 70',
    'From: <sip:legit@bench.test>;tag=l1',
    'To: <sip:legit@bench.test>',
    `Call-ID: ${callId}`,
    `CSeq: ${sequence} ${method}`,
    ...(method === 'REGISTER' ? [`Contact: <sip:legit@127.0.0.1:${localPort};transport=tcp>`, 'Expires: 600'] : []),
    'Content-Length: 0',
    '',
    '',
  ];
  return { bytes: lines.join('\r\n'), callId };
}

/** Whether the answer to a request with `callId` arrives on `socket` within `ms`. */
export function answered(socket: net.Socket, callId: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (seen.includes(callId) && /^SIP\/2\.0 2\d\d /m.test(seen)) done(true);
    };
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

export async function optionsOverFreshConnection(port: number, ms: number): Promise<boolean> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  try {
    const connected = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true)).once('close', () => resolve(false))),
      sleep(ms).then(() => false),
    ]);
    if (!connected) return false;
    const r = request('OPTIONS', port, socket.localPort!);
    socket.write(r.bytes);
    return await answered(socket, r.callId, ms);
  } finally {
    socket.destroy();
  }
}

/** The legitimate client: a fresh connection with an OPTIONS every second, and a REGISTER every second on one kept open. */
export class LegitClient {
  fresh = { sent: 0, ok: 0 };
  kept = { sent: 0, ok: 0, reconnects: 0 };
  private running = true;
  private keptSocket: net.Socket | undefined;
  private readonly loops: Array<Promise<void>> = [];

  constructor(private readonly port: number) {
    this.loops.push(this.freshLoop(), this.keptLoop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.keptSocket?.destroy();
  }

  private async freshLoop(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      this.fresh.sent++;
      if (await optionsOverFreshConnection(this.port, 2000)) this.fresh.ok++;
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
  }

  private async keptLoop(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      this.kept.sent++;
      if (await this.registerOnKeptConnection()) this.kept.ok++;
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
  }

  private async registerOnKeptConnection(): Promise<boolean> {
    if (!this.keptSocket || this.keptSocket.destroyed) {
      if (this.keptSocket) this.kept.reconnects++;
      const socket = net.connect({ port: this.port, host: '127.0.0.1' });
      socket.on('error', () => undefined);
      this.keptSocket = socket;
      const ok = await Promise.race([new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true)).once('close', () => resolve(false))), sleep(2000).then(() => false)]);
      if (!ok) return false;
    }
    const r = request('REGISTER', this.port, this.keptSocket.localPort!);
    this.keptSocket.write(r.bytes);
    return answered(this.keptSocket, r.callId, 2000);
  }
}

/** Attackers: connections that never finish a message, reopened as soon as the server closes them. */
export class Attack {
  opened = 0;
  closedByServer = 0;
  bytes = 0;
  private running = true;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly port: number,
    private readonly addresses: string[],
    private readonly perAddress: number,
  ) {}

  async start(): Promise<void> {
    // In batches, so that the listen backlog is not what refuses them.
    const all = this.addresses.flatMap((a) => Array.from({ length: this.perAddress }, () => a));
    for (let i = 0; i < all.length && this.running; i += 200) {
      await Promise.all(all.slice(i, i + 200).map((a) => this.open(a)));
    }
  }

  /** One byte to every open connection. */
  writeEach(): void {
    for (const socket of this.sockets) {
      if (socket.writableLength > 0) continue;
      socket.write('a');
      this.bytes++;
    }
  }

  stop(): void {
    this.running = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private open(localAddress: string): Promise<void> {
    return new Promise((resolve) => {
      const socket = net.connect({ port: this.port, host: '127.0.0.1', localAddress });
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        this.opened++;
        this.sockets.add(socket);
        // A request line and a header that never ends.
        socket.write('OPTIONS sip:bench.test SIP/2.0\r\nX-Slow: ');
        resolve();
      });
      socket.once('close', () => {
        resolve();
        if (!this.sockets.delete(socket) || !this.running) return;
        this.closedByServer++;
        setTimeout(() => void this.open(localAddress), 10);
      });
    });
  }
}

export function addresses(first: [number, number], count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const n = first[0] * 256 + first[1] + i;
    return `127.0.${Math.floor(n / 256)}.${n % 256}`;
  });
}
