/** The daemon's own families from the figures it is given (pure: a stand-in manager). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Manager } from '../../src/daemon/manager.js';
import { daemonFamilies } from '../../src/export/daemon-metrics.js';
import { renderText } from '../../src/export/text.js';
import { promtoolCheckMetrics } from '../prometheus.js';
import { parseExposition, pick } from './util.js';

const fakeManager = {
  stats: { overflows: 0, rescans: 0, reconciles: 0, opsFailed: 0 },
  startedAt: 0,
  roots: [],
  collectors: { status: () => ({}) },
} as unknown as Manager;

describe("the daemon's HTTP figures", () => {
  it('answerTimeouts is cgview_daemon_http_answer_timeouts_total', () => {
    const fams = daemonFamilies(fakeManager, {
      control: undefined,
      http: { connections: 1, requests: 9, answerTimeouts: 3, firstRequestTimeouts: 2 },
      scrapes: 0,
      snapshots: 0,
      snapshotMs: 0,
      cgroups: 0,
      readErrorsTotal: 0,
      conflicts: 0,
    });
    const text = renderText(fams, false);
    const s = parseExposition(text);
    assert.equal(pick(s, 'cgview_daemon_http_answer_timeouts_total', {})[0]?.value, 3);
    assert.equal(pick(s, 'cgview_daemon_http_first_request_timeouts_total', {})[0]?.value, 2);
    assert.match(text, /^# TYPE cgview_daemon_http_answer_timeouts_total counter$/m);
    assert.equal(promtoolCheckMetrics(text).output, '');
  });
});
