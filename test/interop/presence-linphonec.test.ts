/**
 * linphonec (Debian 12: linphone-cli 5.1, liblinphone 5.1; test/helpers/linphonec.ts) watching a buddy through
 * sipway's presence server (docs/presence.md), at `sipway serve` with users made by the CLI: the buddy is sipway's
 * own UserAgent, which registers, PUBLISHes and unregisters.
 *
 * What linphonec does here: `friend add "NAME" URI` adds a friend and liblinphone SUBSCRIBEs (Event: presence)
 * through its proxy at once (407 answered with its credentials); each NOTIFY it takes is printed as `Friend "NAME"
 * <URI> is STATE` (linphone_online_status_to_string: Online, Away, Offline, ...; nothing when the state is unchanged).
 * It maps PIDF <basic>open</basic> to Online, an RPID <activities><away/> of a person element (RFC 4480) to Away and
 * <basic>closed</basic> to Offline. `friend list` shows no state. linphonec 5.1 has no console command to change its
 * own presence (the helper's account has publish=0), so only this direction is tested.
 *
 * One worker (`--workers 1`): subscriptions and publications live in the process that took them; NOTIFYs paced at
 * 100 ms instead of 5 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserAgent } from '../../src/ua/index.js';
import { freePort, runCli, skipWithout, startCliServer, type RunningServer } from '../helpers/process.js';
import { Linphonec } from '../helpers/linphonec.js';
import { until } from '../helpers/waits.js';

const DOMAIN = 'sipway.test';
const STEP_MS = 8000;

test('linphonec watches a buddy (sipway\'s UA) through sipway: friend add → SUBSCRIBE 200; Offline → Online (registers) → Away → Offline (PUBLISH) → Online (publication removed) → Offline (unregisters)', { timeout: 60000, skip: skipWithout('linphonec') }, async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipway-presence-linphonec-'));
  const data = path.join(work, 'data');
  let server: RunningServer | undefined;
  let bob: Linphonec | undefined;
  let alice: UserAgent | undefined;
  try {
    for (const user of ['alice', 'bob']) {
      const r = runCli(['user', 'add', `${user}@${DOMAIN}`, '--password', `${user}-pw`, '--data', data]);
      assert.equal(r.status, 0, r.stderr);
    }
    const config = path.join(work, 'sipway.json');
    writeFileSync(config, JSON.stringify({ presence: { notifyIntervalMs: 100 }, accounting: { enabled: false } }));
    const port = await freePort();
    server = await startCliServer(['--listen', `udp:127.0.0.1:${port}`, '--domain', DOMAIN, '--data', data, '--config', config, '--log-level', 'info', '--workers', '1']);
    const subscribes = (): Array<{ status: number }> =>
      server!
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{') && l.includes('"method":"SUBSCRIBE"') && l.includes(`"from":"sip:bob@${DOMAIN}"`) && l.includes(`"to":"sip:alice@${DOMAIN}"`))
        .map((l) => JSON.parse(l) as { status: number });

    const dir = path.join(work, 'bob');
    mkdirSync(dir);
    bob = await Linphonec.start('bob', dir, { user: 'bob', domain: DOMAIN, password: 'bob-pw', proxy: `sip:127.0.0.1:${port}` });
    await bob.waitRegistered(STEP_MS);
    const aliceUri = `sip:alice@${DOMAIN}`;
    alice = await UserAgent.start({ aor: aliceUri, credentials: { username: 'alice', password: 'alice-pw' }, proxy: { transport: 'udp', address: '127.0.0.1', port } });

    /** linphonec prints that alice is `state` (after `since`). */
    const shows = (state: string, since: number): Promise<void> => bob!.waitForOutput(new RegExp(`Friend "alice" <sip:alice@sipway\\.test> is ${state}\\b`), STEP_MS, since);

    let since = bob.mark();
    bob.send(`friend add "alice" ${aliceUri}`);
    assert.ok(await until(() => subscribes().some((s) => s.status === 200), STEP_MS, 25), `sipway took linphonec's SUBSCRIBE: ${JSON.stringify(subscribes())}`);
    await shows('Offline', since);

    since = bob.mark();
    const registration = alice.registration({ expires: 600 });
    assert.equal((await registration.register()).status, 200);
    await shows('Online', since);

    // A person element saying away (RPID), over an open tuple.
    const doc = (basic: string, person = ''): Buffer =>
      Buffer.from(
        `<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${aliceUri}"><tuple id="alice-ua"><status><basic>${basic}</basic></status></tuple>${person}</presence>`,
      );
    since = bob.mark();
    const away = await alice.request('PUBLISH', aliceUri, { headers: [['Event', 'presence'], ['Expires', '600']], body: doc('open', '<dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities></dm:person>'), contentType: 'application/pidf+xml' });
    assert.equal(away.status, 200, away.reason);
    await shows('Away', since);

    since = bob.mark();
    const closed = await alice.request('PUBLISH', aliceUri, { headers: [['Event', 'presence'], ['Expires', '600'], ['SIP-If-Match', away.response!.headers.get('sip-etag')!]], body: doc('closed'), contentType: 'application/pidf+xml' });
    assert.equal(closed.status, 200, closed.reason);
    await shows('Offline', since);

    // Without a publication, sipway's state is the registration's: open.
    since = bob.mark();
    const removed = await alice.request('PUBLISH', aliceUri, { headers: [['Event', 'presence'], ['Expires', '0'], ['SIP-If-Match', closed.response!.headers.get('sip-etag')!]] });
    assert.equal(removed.status, 200, removed.reason);
    await shows('Online', since);

    since = bob.mark();
    assert.equal((await registration.unregister()).status, 200);
    await shows('Offline', since);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- linphonec ---\n${bob?.output().slice(-3000) ?? ''}\n--- liblinphone log (tail) ---\n${bob?.log(6000) ?? ''}\n--- sipway (tail) ---\n${server?.output().slice(-3000) ?? ''}`, { cause: e });
  } finally {
    await bob?.stop();
    await alice?.stop();
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
