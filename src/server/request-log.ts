import type { SipRequest, SipResponse } from '../message/index.js';
import type { TransactionUserModule } from '../transaction/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/** The transaction user module that logs one line per request at the info level, when its final response is sent. */
export function requestLogModule(logger: Logger, clock: Clock): TransactionUserModule {
  return {
    name: 'request-log',
    answered: (req: SipRequest, res: SipResponse) => {
      const src = req.source;
      logger.info(
        {
          method: req.method,
          ruri: req.uri.toString(),
          from: safe(() => req.from.uri.toString()),
          to: safe(() => req.to.uri.toString()),
          callId: req.callId,
          cseq: req.cseq.seq,
          src: src ? `${src.transport}:${src.address}:${src.port}` : undefined,
          status: res.status,
          reason: res.reason,
          // From its arrival: the time it waited to be read counts as much as the time it took to answer.
          ms: src ? clock.now() - src.receivedAt : undefined,
        },
        'request',
      );
    },
  };
}

function safe(fn: () => string): string | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
