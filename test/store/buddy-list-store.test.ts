import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InvalidBuddyListError, MemoryBuddyListStore, openStores, type BuddyListRecord, type BuddyListStore } from '../../src/store/index.js';
import { FakeClock } from '../../src/util/clock.js';

const ALICE_LIST: BuddyListRecord = {
  username: 'alice',
  domain: 'Example.COM',
  members: [{ uri: 'sip:bob@example.com', name: 'Bob "the builder" & co' }, { uri: 'sip:carol@elsewhere.net' }],
};

/** What every backend of the buddy lists must do alike. */
function suite(name: string, open: () => Promise<{ store: BuddyListStore; reopen?: () => Promise<BuddyListStore>; close(): Promise<void> }>): void {
  describe(`BuddyListStore: ${name}`, () => {
    it('keeps a list with its members in order and their names, under the canonical domain; lists and removes it', async () => {
      const opened = await open();
      try {
        const { store } = opened;
        assert.equal(await store.get('alice', 'example.com'), undefined);
        await store.put(ALICE_LIST);
        const got = await store.get('alice', 'EXAMPLE.com');
        assert.deepEqual(got, { ...ALICE_LIST, domain: 'example.com' });
        got!.members.push({ uri: 'sip:mallory@example.com' });
        assert.equal((await store.get('alice', 'example.com'))!.members.length, 2, 'a copy: the caller cannot change what is stored');
        await store.put({ username: 'zoe', domain: 'example.com', members: [] });
        assert.deepEqual((await store.list('example.com')).map((r) => r.username), ['alice', 'zoe']);
        assert.equal(await store.remove('zoe', 'example.com'), true);
        assert.equal(await store.remove('zoe', 'example.com'), false);
        if (opened.reopen) {
          const again = await opened.reopen();
          assert.deepEqual(await again.get('alice', 'example.com'), { ...ALICE_LIST, domain: 'example.com' }, 'kept across a restart');
        }
      } finally {
        await opened.close();
      }
    });

    it('refuses malformed lists: a member twice, a member that is no SIP URI, a name with control characters', async () => {
      const opened = await open();
      try {
        const bad: Array<BuddyListRecord['members']> = [
          [{ uri: 'sip:bob@example.com' }, { uri: 'sip:bob@example.com' }],
          [{ uri: 'mailto:bob@example.com' }],
          [{ uri: 'sip:bob@example.com', name: 'line\nbreak' }],
        ];
        for (const members of bad) await assert.rejects(opened.store.put({ username: 'alice', domain: 'example.com', members }), InvalidBuddyListError);
        assert.equal(await opened.store.get('alice', 'example.com'), undefined);
      } finally {
        await opened.close();
      }
    });
  });
}

suite('memory', async () => ({ store: new MemoryBuddyListStore(), close: async () => undefined }));

suite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipway-buddies-'));
  const clock = new FakeClock(Date.now());
  const stores = [await openStores({ dataDir: dir }, clock)];
  return {
    store: stores[0]!.buddyLists,
    reopen: async () => {
      await stores[0]!.close();
      stores[0] = await openStores({ dataDir: dir }, clock);
      return stores[0].buddyLists;
    },
    close: async () => {
      await stores[0]!.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
