import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Tells every process sharing a Redis store (workers and nodes) of a change one of them saw: Redis pub/sub on one
 * channel. A process does not hear its own messages back (it acts on its changes itself), so each hears of a change once.
 * Messages are best effort, as pub/sub is: a process that is disconnected misses them and learns the state at the
 * next full-state NOTIFY.
 */
export interface ChangeChannel {
  publish(message: string): void;
  /** Starts hearing the others; resolves once subscribed. */
  listen(handler: (message: string) => void): Promise<void>;
  close(): Promise<void>;
}

export class RedisChangeChannel implements ChangeChannel {
  private readonly origin = randomBytes(8).toString('hex');
  private subscriber: Redis | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly channel: string,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  publish(message: string): void {
    this.redis.publish(this.channel, `${this.origin} ${message}`).catch(this.onError);
  }

  async listen(handler: (message: string) => void): Promise<void> {
    // A connection in subscriber mode takes no other command: one of its own.
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', this.onError);
    subscriber.on('message', (_channel: string, raw: string) => {
      const space = raw.indexOf(' ');
      if (space < 0 || raw.slice(0, space) === this.origin) return;
      try {
        handler(raw.slice(space + 1));
      } catch (err) {
        this.onError(err);
      }
    });
    await subscriber.subscribe(this.channel);
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
