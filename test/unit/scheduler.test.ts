/** The scheduler: scopes gathered per tree, folded, run once per batch; later ones wait on its own timers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Scheduler } from '../../src/daemon/scheduler.js';
import type { DirtyScope } from '../../src/tree/dirty.js';

describe('Scheduler', () => {
  it('runs each tree once per batch with its folded scopes, when the loop is idle', async () => {
    const runs: Array<[string, DirtyScope[]]> = [];
    const s = new Scheduler<string>((owner, scopes) => runs.push([owner, scopes]));
    s.mark('t1', { rel: 'a/b', depth: 'shallow' });
    s.mark('t2', { rel: 'x', depth: 'shallow' });
    s.mark('t1', { rel: 'a', depth: 'deep' });
    assert.deepEqual(runs, [], 'nothing runs inside the event handler');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(runs, [
      ['t1', [{ rel: 'a', depth: 'deep' }]],
      ['t2', [{ rel: 'x', depth: 'shallow' }]],
    ]);
    s.flush();
    assert.equal(runs.length, 2, 'a batch runs once');
    s.close();
  });

  it('a later scope waits, a forgotten tree runs nothing, close cancels what waits', async () => {
    const runs: string[] = [];
    const s = new Scheduler<string>((owner, scopes) =>
      runs.push(`${owner}:${scopes.map((x) => x.rel).join(',')}`),
    );
    s.later('t1', { rel: 'r', depth: 'deep' }, 20);
    s.mark('t2', { rel: 'q', depth: 'deep' });
    s.forget('t2');
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(runs, ['t1:r']);
    s.later('t1', { rel: 'never', depth: 'deep' }, 20);
    s.close();
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(runs, ['t1:r']);
  });
});
