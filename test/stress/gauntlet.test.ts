/**
 * The gauntlet (test/stress/gauntlet.ts) reduced to fit the regular suite:
 * a few thousand churn operations, a handful of kill -9 restarts, one
 * overflow and one watch-limit episode, the hostile names, a few thousand
 * race attempts by `nobody`, a flooding client and failed pins. Every
 * assertion is on what the gauntlet itself made.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { report, runGauntlet } from './gauntlet.js';

describe('gauntlet, reduced', () => {
  it('every part holds', async (t) => {
    const f = await runGauntlet({ scale: 0.04, seconds: 20, log: (s) => t.diagnostic(s) });
    for (const line of report(f).split('\n')) t.diagnostic(line);
    const { churn, restarts, inotify, names, races, flood, failedPins } = f;
    assert.ok(churn && restarts && inotify && names && races && flood && failedPins, 'every part ran');

    assert.ok(churn.ops >= 500, `churn operations: ${churn.ops}`);
    assert.equal(churn.exact, churn.checks, 'the mirror was exact after every round of churn');

    assert.ok(restarts.tried >= 3, `restarts tried: ${restarts.tried}`);
    assert.equal(restarts.converged, restarts.tried, 'every kill -9 restart converged');
    assert.equal(restarts.ackedKept, restarts.ackedTotal, 'no acknowledged pin or unpin was lost');

    assert.ok(inotify.overflowEpisodes >= 1 && inotify.limitEpisodes >= 1);
    assert.equal(inotify.overflowsRecovered, inotify.overflowEpisodes, 'overflows recovered');
    assert.equal(inotify.limitRecovered, inotify.limitEpisodes, 'watch-limit episodes recovered');

    assert.ok(names.exact, 'hostile names mirrored byte for byte');
    assert.equal(names.mirrored, names.tried - 2, 'all but the two unmirrorable names');
    assert.equal(names.reported, 2, 'the two unmirrorable names reported');

    assert.ok(races.attempts >= 1000, `race attempts: ${races.attempts}`);
    assert.ok(races.succeeded > 0, 'the attacker did get to change its directory');
    assert.equal(races.outsideActions, 0, 'no action outside the tree');
    assert.ok(races.daemonAlive, 'the daemon survived the attacker');
    assert.ok(races.converged, 'the views came back');

    assert.equal(failedPins.failed, failedPins.tried, 'every bad pin failed');
    assert.equal(failedPins.fdsAfter, failedPins.fdsBefore, 'descriptors after failed pins');
    assert.equal(failedPins.progsAfter, failedPins.progsBefore, 'programs held after failed pins');
    assert.ok(flood.sentMb > 0);
    assert.ok(
      flood.peakMb - flood.baselineMb < 100,
      `RSS grew ${flood.peakMb - flood.baselineMb} MB under a flood`,
    );
    assert.ok(
      flood.many.connected >= flood.many.clients * 0.9,
      `${flood.many.connected} of ${flood.many.clients} connected`,
    );
    assert.ok(flood.many.offeredMb > 100, `${flood.many.offeredMb} MiB offered by many clients`);
    assert.ok(
      flood.many.peakMb - flood.many.baselineMb < 200,
      `RSS grew ${flood.many.peakMb - flood.many.baselineMb} MB under ${flood.many.clients} flooding clients`,
    );
    assert.ok(
      flood.many.answered,
      'the daemon answered root during, and nobody after, the flood of many clients',
    );
  });
});
