/** ExportOptions: globs, filters, bucket picks and the --metrics-config parser (pure). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCgviewError } from '../../src/errors.js';
import {
  cgroupFilter,
  DEFAULT_BUCKETS_S,
  defaultExportOptions,
  globToRegExp,
  parseExportConfig,
  pickBuckets,
  viewFilter,
} from '../../src/export/options.js';

describe('export options', () => {
  it('globs: * within a component, ** across them, ? one character', () => {
    const m = (g: string, p: string) => globToRegExp(g).test(p);
    assert.ok(m('/**', '/'));
    assert.ok(m('/**', '/a/b.c'));
    assert.ok(m('/system.slice/*.service', '/system.slice/ssh.service'));
    assert.ok(!m('/system.slice/*.service', '/system.slice/a/ssh.service'));
    assert.ok(!m('/system.slice/*.service', '/system.slice/sshXservice'));
    assert.ok(m('/kubepods.slice/**', '/kubepods.slice'));
    assert.ok(m('/kubepods.slice/**', '/kubepods.slice/x/y'));
    assert.ok(!m('/kubepods.slice/**', '/kubepods.slicex'));
    assert.ok(m('/**/*.scope', '/a/b/c.scope'));
    assert.ok(m('/**/*.scope', '/c.scope'));
    assert.ok(m('/a?c', '/abc'));
    assert.ok(!m('/a?c', '/a/c'));
    assert.ok(m('/x(1)+[2]', '/x(1)+[2]'));
  });

  it('filters: include, exclude (wins), max depth, views', () => {
    const o = parseExportConfig(
      '{"include": ["/system.slice/**", "/"], "exclude": ["/system.slice/*.mount"], "max_depth": 2}',
    );
    const f = cgroupFilter(o);
    assert.ok(f('/', 0));
    assert.ok(f('/system.slice', 1));
    assert.ok(f('/system.slice/ssh.service', 2));
    assert.ok(!f('/system.slice/ssh.service/x', 3));
    assert.ok(!f('/system.slice/-.mount', 2));
    assert.ok(!f('/user.slice', 1));
    assert.ok(cgroupFilter(defaultExportOptions())('/any/thing', 9));
    const v = viewFilter(parseExportConfig('{"views": ["sched_lat", "info"], "exclude_views": ["info"]}'));
    assert.deepEqual(['sched_lat', 'info', 'cpu'].map(v), [true, false, false]);
  });

  it('buckets: the default is every second power of two from 2^10 to 2^32 ns; picks are the nearest view bounds', () => {
    assert.equal(DEFAULT_BUCKETS_S.length, 12);
    assert.equal(DEFAULT_BUCKETS_S[0], 1024e-9);
    assert.equal(DEFAULT_BUCKETS_S[11], 2 ** 32 * 1e-9);
    const bounds = Array.from({ length: 32 }, (_, i) => 2 ** (8 + i));
    assert.deepEqual(
      pickBuckets(bounds, 1e-9, DEFAULT_BUCKETS_S).map((i) => Math.log2(bounds[i]!)),
      [10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32],
    );
    // 1 ms is nearest to 2^20 ns (1.05 ms); duplicates fold; beyond the bounds: the last one.
    assert.deepEqual(
      pickBuckets(bounds, 1e-9, [0.001, 0.00101, 1e6]).map((i) => Math.log2(bounds[i]!)),
      [20, 39],
    );
    assert.equal(pickBuckets(bounds, 1e-9, 'all').length, 32);
  });

  it('the config file: JSON, every mistake named', () => {
    const bad = (text: string, re: RegExp) =>
      assert.throws(
        () => parseExportConfig(text, '/etc/cgview/metrics.json'),
        (e) =>
          isCgviewError(e, 'E_BAD_INPUT') &&
          re.test(e.message) &&
          e.message.includes('/etc/cgview/metrics.json'),
      );
    bad('{', /not JSON/);
    bad('[]', /not a JSON object/);
    bad('{"includes": ["/"]}', /unknown key "includes"/);
    bad('{"include": "/"}', /include must be a list/);
    bad('{"include": ["system.slice"]}', /must start with '\/'/);
    bad('{"max_depth": -1}', /max_depth/);
    bad('{"buckets": []}', /buckets/);
    bad('{"buckets": [0]}', /buckets/);
    bad('{"buckets": "some"}', /buckets/);
    bad('{"cache_ms": 1e9}', /cache_ms/);
    bad('{"daemon": "yes"}', /daemon/);
    const o = parseExportConfig('{"buckets": [1, 0.001], "cache_ms": 0, "daemon": false}');
    assert.deepEqual(o.buckets, [0.001, 1]);
    assert.equal(o.cacheMs, 0);
    assert.equal(o.daemon, false);
    assert.deepEqual(parseExportConfig('{}'), defaultExportOptions());
  });
});
