import type { WatcherRulesStore } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { EventPackage, EventState, StateContext } from './event-package.js';
import { dialogLocalTag, dialogRemoteTag, isDialogUpdate, type DialogEntry, type DialogParty, type DialogStates } from './dialog-states.js';
import { decideWatcher } from './presence-service.js';

export const DIALOG_INFO_TYPE = 'application/dialog-info+xml';

/**
 * RFC 4235 §4: a dialog-info document of `entity` with `dialogs` (live ones in their state, ended ones terminated
 * with the event that ended them). `state` full lists every dialog; partial only those that changed (§4.1.1).
 */
export function dialogInfo(entity: string, version: number, state: 'full' | 'partial', dialogs: readonly DialogEntry[], now: number): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${version}" state="${state}" entity="${esc(entity)}">`];
  for (const d of dialogs) {
    const local = dialogLocalTag(d);
    const remote = dialogRemoteTag(d);
    lines.push(
      `  <dialog id="${esc(d.id)}" call-id="${esc(d.callId)}"${local ? ` local-tag="${esc(local)}"` : ''}${remote ? ` remote-tag="${esc(remote)}"` : ''} direction="${d.direction}">`,
    );
    const code = d.state === 'terminated' && d.code !== undefined ? ` code="${d.code}"` : '';
    const event = d.state === 'terminated' && d.event !== undefined ? ` event="${d.event}"` : '';
    lines.push(`    <state${event}${code}>${d.state}</state>`);
    // §4.1.6.3: seconds since the dialog was created (until it ended).
    lines.push(`    <duration>${Math.max(0, Math.round(((d.endedAt ?? now) - d.createdAt) / 1000))}</duration>`);
    lines.push(...participant('local', d.local), ...participant('remote', d.remote));
    lines.push('  </dialog>');
  }
  lines.push('</dialog-info>', '');
  return lines.join('\r\n');
}

/** §4.1.6.4: a participant's identity (with its display name) and target, when known. */
function participant(name: 'local' | 'remote', p: DialogParty): string[] {
  if (!p.identity && !p.target) return [];
  const out = [`    <${name}>`];
  if (p.identity) out.push(`      <identity${p.display ? ` display="${esc(p.display)}"` : ''}>${esc(p.identity)}</identity>`);
  if (p.target) out.push(`      <target uri="${esc(p.target)}"/>`);
  out.push(`    </${name}>`);
  return out;
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface DialogPackageOptions {
  /** The dialogs of our users; the package applies the updates the presence service hands it (EventPackage.apply). */
  states: DialogStates;
  clock: Clock;
  /** The presentities' rules about watchers (the same as for presence); without them every watcher is allowed. */
  watcherRules?: Pick<WatcherRulesStore, 'get'>;
  /**
   * The dialogs of an AOR other than the update's own changed while it was applied (ran out, dropped for a cap): its
   * watchers are to be told (the notifier's changed('dialog', aor)). The update's own AOR the service tells itself.
   */
  changed?: (aor: string) => void;
}

/** What one subscription has been told: its next version, the tracker's counter then, and the dialogs it was shown. */
interface Told {
  version: number;
  seq: number;
  shown: Map<string, DialogEntry>;
}

/**
 * The dialog event package (RFC 4235), for busy-lamp fields: a watcher subscribes to `Event: dialog` of a user of
 * ours and is told the dialogs of that user's calls as the proxy sees them. Each subscription has its own version
 * counting up from 0 (§4.1); its first NOTIFY, a refresh's and a decision's carry the full state, the ones between
 * carry `partial` state with only the dialogs that changed since it was last told (ended ones once, terminated with
 * the event that ended them). Watchers are decided by the presence rules (decideWatcher); a politely blocked one is
 * always shown no dialogs.
 */
export function dialogPackage(options: DialogPackageOptions): EventPackage {
  const { states, clock, watcherRules } = options;
  const told = new Map<string, Told>();
  // Versions for a state asked without a subscription (a program's own look) or for a politely blocked watcher:
  // counting up in all, so that each subscription still sees them grow (RFC 4235 §4.4 discards older versions).
  let looseVersion = 0;
  return {
    event: 'dialog',
    contentType: DIALOG_INFO_TYPE,
    publishable: false,
    defaultExpires: 3600,
    authorize: watcherRules && ((watcher, resource) => decideWatcher(watcherRules, watcher, resource)),
    politeState: (resource) => ({ contentType: DIALOG_INFO_TYPE, body: dialogInfo(resource, looseVersion++, 'full', [], clock.now()) }),
    ended: (subscription) => void told.delete(subscription),
    state: async (resource, context) => dialogState(resource, context),
    apply: (resource, update) => {
      // It may come from another process: checked, not trusted (a bad one is the caller's to log).
      if (!isDialogUpdate(update)) throw new Error('not a dialog update');
      for (const aor of states.apply(update, resource)) if (aor !== resource) options.changed?.(aor);
    },
  };

  function dialogState(resource: string, context: StateContext | undefined): EventState {
    const now = clock.now();
    const live = states.dialogs(resource);
    const memory = context && told.get(context.subscription);
    if (context === undefined) return { contentType: DIALOG_INFO_TYPE, body: dialogInfo(resource, looseVersion++, 'full', live, now) };
    if (memory === undefined) {
      told.set(context.subscription, { version: 1, seq: states.seq, shown: byId(live) });
      return { contentType: DIALOG_INFO_TYPE, body: dialogInfo(resource, 0, 'full', live, now) };
    }
    // Ended since this subscription was last told: reported once (in a full state too, after a refresh).
    const ended = states.ended(resource).filter((d) => d.seq > memory.seq);
    let dialogs: DialogEntry[];
    if (context.full) dialogs = [...live, ...ended];
    else {
      const liveIds = byId(live);
      const endedIds = byId(ended);
      // Shown before and gone without an end kept here (dropped for a cap, or ended long ago): terminated now.
      const gone = [...memory.shown.values()].filter((d) => !liveIds.has(d.id) && !endedIds.has(d.id)).map((d) => asTerminated(d, now));
      dialogs = [...live.filter((d) => d.seq > memory.seq), ...ended, ...gone];
    }
    const version = memory.version++;
    memory.seq = states.seq;
    memory.shown = byId(live);
    return { contentType: DIALOG_INFO_TYPE, body: dialogInfo(resource, version, context.full ? 'full' : 'partial', dialogs, now) };
  }
}

function byId(dialogs: readonly DialogEntry[]): Map<string, DialogEntry> {
  return new Map(dialogs.map((d) => [d.id, d]));
}

/**
 * A dialog shown live that the tracker no longer has: as it ended when it ended (its entry is the tracker's own, ended
 * in place), else terminated now with no event (dropped for a cap: we do not know how it ends).
 */
function asTerminated(d: DialogEntry, now: number): DialogEntry {
  if (d.state === 'terminated') return d;
  return { ...d, state: 'terminated', event: undefined, code: undefined, endedAt: now };
}
