/** parseSchedLat: the structure of a sched_lat file (docs/sched_lat.md), without a kernel. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import { parseSchedLat, SCHED_LAT_KEYS } from '../../src/views/parse.js';

/** A file as the view prints it: the max lines, wait_ns_lt_256 .. wait_ns_lt_2^39, wait_ns_lt_inf, percentiles. */
function sample(over: Record<string, string> = {}): string {
  const lines: Array<[string, string]> = [
    ['cgroup_id', '1234'],
    ['queue_self', '12004055'],
    ['queue_other', '389524'],
    ['wait_count', '770'],
    ['wait_ns_total', '6136689773'],
    ['queue_self_ns_total', '6134509378'],
    ['queue_other_ns_total', '2180395'],
    ['queue_self_max_ns', '12004055'],
    ['queue_other_max_ns', '389524'],
  ];
  for (let k = 8; k <= 39; k++) lines.push([`wait_ns_lt_${2n ** BigInt(k)}`, k < 23 ? '0' : '770']);
  lines.push(['wait_ns_lt_inf', '770'], ['p50_ns', '6294169'], ['p90_ns', '8008787'], ['p99_ns', '10252743']);
  return lines.map(([k, v]) => `${k}: ${over[k] ?? v}\n`).join('');
}

const badInput = (re: RegExp) => (e: unknown) =>
  isCgviewError(e, 'E_BAD_INPUT') && re.test((e as Error).message);

describe('parseSchedLat', () => {
  it('reads every field', () => {
    const s = parseSchedLat(sample())!;
    assert.equal(s.cgroupId, 1234n);
    assert.equal(s.queueSelfMaxNs, 12004055n);
    assert.equal(s.queueOtherMaxNs, 389524n);
    assert.equal(s.waitCount, 770n);
    assert.equal(s.waitNsTotal, 6136689773n);
    assert.equal(s.queueSelfNsTotal, 6134509378n);
    assert.equal(s.queueOtherNsTotal, 2180395n);
    assert.equal(s.hist.length, 33);
    assert.deepEqual(s.hist[0], { ltNs: 256n, count: 0n });
    assert.deepEqual(s.hist[31], { ltNs: 2n ** 39n, count: 770n });
    assert.deepEqual(s.hist[32], { ltNs: null, count: 770n });
    assert.deepEqual([s.p50Ns, s.p90Ns, s.p99Ns], [6294169n, 8008787n, 10252743n]);
  });

  it('reads empty output (a removed cgroup) as null', () => {
    assert.equal(parseSchedLat(''), null);
  });

  it('wants the seven first keys in the fixed order', () => {
    const lines = sample().split('\n');
    [lines[1], lines[2]] = [lines[2]!, lines[1]!];
    assert.throws(
      () => parseSchedLat(lines.join('\n')),
      badInput(/line 2: expected queue_self, got queue_other/),
    );
    assert.deepEqual(SCHED_LAT_KEYS.slice(0, 3), ['cgroup_id', 'queue_self', 'queue_other']);
  });

  it('wants a histogram ending with wait_ns_lt_inf, bounds growing', () => {
    const noInf = sample().replace(/wait_ns_lt_inf: 770\n/, '');
    assert.throws(() => parseSchedLat(noInf), badInput(/wait_ns_lt_inf/));
    const swapped = sample().replace('wait_ns_lt_512:', 'wait_ns_lt_128:');
    assert.throws(() => parseSchedLat(swapped), badInput(/wait_ns_lt_128 out of order/));
  });

  it('wants the two max lines after the seven first', () => {
    const noMax = sample().replace(/queue_other_max_ns: 389524\n/, '');
    assert.throws(() => parseSchedLat(noMax), badInput(/line 8: expected queue_self_max_ns/));
  });

  it('wants p50, p90, p99 after the histogram', () => {
    assert.throws(() => parseSchedLat(sample().replace('p90_ns', 'p95_ns')), badInput(/expected p50_ns/));
  });

  it('refuses a non-numeric value', () => {
    assert.throws(() => parseSchedLat(sample({ wait_count: '-3' })), badInput(/wait_count/));
  });
});
