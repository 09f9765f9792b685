/**
 * The same call through Kamailio 5.6 with its topoh module and through sipway's stateless topology hiding
 * (src/proxy/topology-hiding.ts), for comparison: Alice (sipway's user agent on 127.0.0.2) calls Bob (on
 * 127.0.0.3) through the edge, which record-routes; hold from each side (re-INVITE), INFO each way, BYE from the
 * callee. On what Bob received, neither edge lets Alice's address, SIP port or Call-ID show in a header; both
 * carry the dialog through. The sizes of the INVITE each edge sends Bob are reported (diagnostics), not asserted.
 * The Kamailio config is written by the test: record_route, loose_route, t_relay, topoh with mask_callid on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer } from '../../src/testing/index.js';
import { RECEIVE_CHANNEL, type ReceiveEvent } from '../../src/transport/index.js';
import { UserAgent, type InviteSession } from '../../src/ua/index.js';
import { startKamailio } from '../helpers/kamailio.js';
import { projectRoot } from '../helpers/paths.js';
import { freePort, skipWithout } from '../helpers/process.js';
import { until, within } from '../helpers/waits.js';

const ALICE_HOST = '127.0.0.2';
const BOB_HOST = '127.0.0.3';
const SDP = (port: number, v = 1): string => `v=0\r\no=- 1 ${v} IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\n`;

const TOPOH_CFG = `#!KAMAILIO
#!ifndef NEXT_HOP
#!define NEXT_HOP "sip:127.0.0.1:5060"
#!endif
debug=2
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "topoh.so"

modparam("topoh", "mask_key", "sipway-interop-topoh-key")
modparam("topoh", "mask_callid", 1)
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 20000)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {
		sl_send_reply("200", "OK");
		exit;
	}
	if (has_totag()) {
		if (loose_route()) {
			route(RELAY);
		}
		if (is_method("ACK") && t_check_trans()) {
			t_relay();
			exit;
		}
		sl_send_reply("404", "Not Here");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}
	t_check_trans();
	record_route();
	$du = NEXT_HOP;
	route(RELAY);
}

route[RELAY] {
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}
`;

interface Outcome {
  /** Header sections each phone received. */
  alice: string[];
  bob: string[];
  alicePort: number;
  bobPort: number;
  aliceCallId: string;
  bobCallId: string;
}

/** The call, through the edge on 127.0.0.1:`edgePort`; Bob listens on `bobPort`. */
async function call(edgePort: number, bobPort: number): Promise<Outcome> {
  const received = new Map<number, string[]>();
  const listener = (message: unknown): void => {
    const event = message as ReceiveEvent;
    received.get(event.source.localPort)?.push(event.bytes.toString('utf8').split('\r\n\r\n')[0]!);
  };
  subscribe(RECEIVE_CHANNEL, listener);
  const proxy = { transport: 'udp' as const, address: '127.0.0.1', port: edgePort };
  const incoming: InviteSession[] = [];
  const infos: string[] = [];
  const bob = await UserAgent.start({
    aor: 'sip:bob@example.net',
    proxy,
    listen: { transport: 'udp', host: BOB_HOST, port: bobPort },
    sessionTimer: false,
    onInvite: (s) => {
      incoming.push(s);
      s.onInfo = (r) => void infos.push(`bob ${r.body.toString()}`);
      s.accept(SDP(40002));
    },
  });
  const alice = await UserAgent.start({ aor: 'sip:alice@sipway.test', proxy, listen: { transport: 'udp', host: ALICE_HOST, port: 0 }, sessionTimer: false });
  const alicePort = alice.transport.listeners()[0]!.port;
  received.set(alicePort, []);
  received.set(bobPort, []);
  try {
    const session = await alice.call(`sip:bob@${BOB_HOST}:${bobPort}`, { sdp: SDP(40000) });
    session.onInfo = (r) => void infos.push(`alice ${r.body.toString()}`);
    assert.equal((await within(session.answered, 'the answer', 5000)).status, 200);
    const bobSession = incoming[0]!;
    assert.ok(await until(() => bobSession.state === 'Confirmed' && !bobSession.awaitingAck, 3000), 'the ACK reached Bob');
    assert.equal((await session.hold()).status, 200);
    await until(() => !bobSession.awaitingAck, 2000);
    assert.equal((await bobSession.hold()).status, 200);
    await until(() => !session.awaitingAck, 2000);
    assert.equal(await session.info('Signal=1\r\n', 'application/dtmf-relay'), 200);
    assert.equal(await bobSession.info('Signal=2\r\n', 'application/dtmf-relay'), 200);
    assert.deepEqual(infos, ['bob Signal=1\r\n', 'alice Signal=2\r\n']);
    assert.equal(await bobSession.bye(), 200);
    assert.equal((await within(session.ended, 'Alice hears the BYE', 3000)).by, 'remote');
    return { alice: received.get(alicePort)!, bob: received.get(bobPort)!, alicePort, bobPort, aliceCallId: session.invite.callId, bobCallId: bobSession.invite.callId };
  } finally {
    unsubscribe(RECEIVE_CHANNEL, listener);
    await alice.stop();
    await bob.stop();
  }
}

/** What the callee's side must not see of the caller's, in any header of any message. */
function assertCallerHidden(o: Outcome, edge: string): void {
  assert.ok(o.bob.length >= 5, `${edge}: Bob received the call`);
  for (const head of o.bob) {
    assert.ok(!head.includes(ALICE_HOST), `${edge}: Bob received Alice's address:\n${head}`);
    assert.ok(!head.includes(`:${o.alicePort}`), `${edge}: Bob received Alice's port:\n${head}`);
    assert.ok(!head.includes(o.aliceCallId), `${edge}: Bob received Alice's Call-ID:\n${head}`);
  }
  assert.notEqual(o.bobCallId, o.aliceCallId);
}

/**
 * Whether the caller's side saw the callee's address or port in a header other than From and To (the URI the caller
 * dialled names Bob's address: it is the caller's own knowledge). topoh's answer and ours may differ.
 */
function calleeShows(o: Outcome): boolean {
  return o.alice.some((head) =>
    head
      .split('\r\n')
      .filter((line) => !/^(from|f|to|t)\s*:/i.test(line))
      .some((line) => line.includes(BOB_HOST) || line.includes(`:${o.bobPort}`)),
  );
}

const inviteSize = (o: Outcome): number => o.bob.find((h) => h.startsWith('INVITE '))!.length;

test('the same call through Kamailio topoh and through sipway: the caller hidden from the callee by both; sizes compared', { skip: skipWithout('kamailio') }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipway-topoh-kamailio-'));
  try {
    // Kamailio first.
    const cfg = path.join(dir, 'topoh.cfg');
    writeFileSync(cfg, TOPOH_CFG);
    const kamailioBob = await freePort();
    const kamailio = await startKamailio(path.relative(path.join(projectRoot, 'test', 'interop', 'kamailio'), cfg), path.join(dir, 'run'), `sip:${BOB_HOST}:${kamailioBob}`);
    let viaKamailio: Outcome;
    try {
      viaKamailio = await call(kamailio.port, kamailioBob);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- kamailio (tail) ---\n${kamailio.output().slice(-6000)}`, { cause: e });
    } finally {
      await kamailio.stop();
    }
    assertCallerHidden(viaKamailio, 'Kamailio topoh');

    // Then sipway, the outside being Bob's address.
    const ts = await startTestServer({ domains: ['sipway.test'], auth: { register: false }, proxy: { authenticateCallers: false }, topologyHiding: { enabled: true, outside: [BOB_HOST] } });
    let viaSipway: Outcome;
    try {
      viaSipway = await call(ts.port, await freePort());
      assert.equal(ts.server.proxy.stats().topologyHiding!.forged, 0);
    } finally {
      await ts.stop();
    }
    assertCallerHidden(viaSipway, 'sipway');
    assert.equal(calleeShows(viaSipway), false, 'sipway hides the callee from the caller too');

    t.diagnostic(`INVITE as Bob received it: Kamailio topoh ${inviteSize(viaKamailio)} bytes of headers, sipway ${inviteSize(viaSipway)} bytes`);
    t.diagnostic(`the callee's address or port shows to the caller: Kamailio topoh ${calleeShows(viaKamailio)}, sipway ${calleeShows(viaSipway)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
