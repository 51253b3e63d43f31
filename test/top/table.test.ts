/** Unit tests of top's pure parts: text, numbers, order, layout, the histogram bars, keys. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Row } from '../../src/top/model.js';
import { parseKeys } from '../../src/top/screen.js';
import {
  columnsOf,
  fmtNs,
  fmtNum,
  genericColumn,
  headerLine,
  histogramBars,
  layout,
  orderRows,
  printable,
  rowLine,
  shortenMiddle,
  width,
} from '../../src/top/table.js';

function row(key: string, o: Partial<Row> = {}): Row {
  const parent = key.includes('/') ? key.slice(0, key.lastIndexOf('/')) : undefined;
  return {
    key,
    parent,
    path: `/${key}`,
    depth: key.split('/').length - 1,
    tree: '/sys/fs/bpf/t',
    hierarchy: 'v2',
    cgroupId: undefined,
    tasks: 1,
    threads: 1,
    cpuPct: 0,
    sched: undefined,
    series: [],
    columns: new Map(),
    errors: [],
    ...o,
  };
}

const waiting = (w: number): Partial<Row> => ({
  sched: {
    view: 'sched_lat',
    fig: { waitPerSec: w, waitsPerSec: 10 * w },
    hist: undefined,
    totals: {},
    first: false,
  },
});

describe('text', () => {
  it('shortens in the middle, keeping both ends', () => {
    const s = shortenMiddle('/system.slice/docker-0123456789abcdef.scope', 20);
    assert.equal(width(s), 20);
    assert.ok(s.startsWith('/system.s') && s.endsWith('def.scope'), s);
    assert.equal(shortenMiddle('/short', 20), '/short');
    assert.equal(shortenMiddle('/abcdefghij', 5, '~'), '/a~ij');
    assert.equal(width(shortenMiddle('/é/ü/ö/ä/ß/ç/ñ/ø', 7)), 7);
  });

  it('shows names as UTF-8 text with control characters escaped (no escape sequence reaches the terminal)', () => {
    const bytes = Buffer.from('/caf\u00e9/a\x1b[2Jb', 'utf8').toString('latin1');
    assert.equal(printable(bytes), '/café/a\\x1b[2Jb');
    assert.equal(printable('/\x9b31m'), '/\ufffd31m'); // a lone C1 byte is not UTF-8: U+FFFD
    assert.equal(printable(Buffer.from('/\u009b31m', 'utf8').toString('latin1')), '/\\x9b31m'); // C1 as UTF-8: escaped
  });
});

describe('numbers', () => {
  it('durations fit six columns', () => {
    assert.equal(fmtNs(850), '850ns');
    assert.equal(fmtNs(12345), '12.3us');
    assert.equal(fmtNs(123456), '123us');
    assert.equal(fmtNs(1.234e6), '1.23ms');
    assert.equal(fmtNs(2.5e9), '2.50s');
    assert.equal(fmtNs(undefined), '-');
    for (const v of [1, 999, 999.9, 1e3, 99999, 1e6, 5e8, 1e9, 99e9])
      assert.ok(fmtNs(v).length <= 6, fmtNs(v));
  });

  it('rates fit six columns', () => {
    assert.equal(fmtNum(2), '2.00');
    assert.equal(fmtNum(12.345), '12.3');
    assert.equal(fmtNum(1234), '1234');
    assert.equal(fmtNum(12345), '12.3k');
    assert.equal(fmtNum(2.5e7), '25.0M');
    for (const v of [0, 9.999, 99.99, 9999, 99999, 9.9e6, 9.9e8]) assert.ok(fmtNum(v).length <= 6, fmtNum(v));
  });
});

describe('order', () => {
  const rows = [
    row('a', waiting(0.5)),
    row('a/x', waiting(3)),
    row('a/y', waiting(0.1)),
    row('b', waiting(1)),
    row('b/z'), // no sched figures: last
  ];
  const cols = columnsOf([]);

  it('flat: by the sort column, largest first, rows without the figure last', () => {
    const o = orderRows(rows, cols, { mode: 'flat', sort: 'wait' });
    assert.deepEqual(
      o.map((x) => x.row.key),
      ['a/x', 'b', 'a', 'a/y', 'b/z'],
    );
    const r = orderRows(rows, cols, { mode: 'flat', sort: 'wait', reverse: true });
    assert.deepEqual(
      r.map((x) => x.row.key),
      ['a/y', 'a', 'b', 'a/x', 'b/z'],
    );
    const p = orderRows(rows, cols, { mode: 'flat', sort: 'path' });
    assert.deepEqual(
      p.map((x) => x.row.key),
      ['a', 'a/x', 'a/y', 'b', 'b/z'],
    );
  });

  it('tree: parents before children, siblings sorted, collapsed children hidden', () => {
    const o = orderRows(rows, cols, { mode: 'tree', sort: 'wait' });
    assert.deepEqual(
      o.map((x) => [x.row.key, x.level, x.children]),
      [
        ['b', 0, 1],
        ['b/z', 1, 0],
        ['a', 0, 2],
        ['a/x', 1, 0],
        ['a/y', 1, 0],
      ],
    );
    const c = orderRows(rows, cols, { mode: 'tree', sort: 'wait', collapsed: new Set(['a']) });
    assert.deepEqual(
      c.map((x) => x.row.key),
      ['b', 'b/z', 'a'],
    );
    assert.equal(c[2]!.collapsed, true);
  });

  it('filter: substring of the path; tree mode keeps the ancestors of matches', () => {
    assert.deepEqual(
      orderRows(rows, cols, { mode: 'flat', sort: 'wait', filter: 'X' }).map((x) => x.row.key),
      ['a/x'],
    );
    assert.deepEqual(
      orderRows(rows, cols, { mode: 'tree', sort: 'wait', filter: 'x' }).map((x) => x.row.key),
      ['a', 'a/x'],
    );
  });
});

describe('layout', () => {
  it('80 columns: every fixed column and a path column of at least 20', () => {
    const l = layout(80, ['cpu:run_seconds'], 200);
    assert.equal(l.columns.length, 8);
    assert.ok(l.pathWidth >= 20);
    const h = headerLine(l, 'wait');
    assert.equal(width(h), 80);
    assert.match(h, /^CGROUP +TASKS +THR +CPU%\*WAIT\/s WAITS\/s +P50 +P99 SELF%$/);
    const line = rowLine(
      {
        row: row('a/very/long/path/that/does/not/fit/at/all/in/twenty', waiting(2)),
        level: 0,
        children: 0,
        collapsed: false,
      },
      l,
      'flat',
    );
    assert.equal(width(line), 80);
    assert.match(line, /…/);
    assert.match(line, / 2\.00 /);
  });

  it('wider: generic columns as they fit; the path takes no more than it needs', () => {
    const l = layout(140, ['cpu:run_seconds', 'cpu:nvcsw', 'cpu:migrations'], 10);
    assert.equal(l.columns.length, 11);
    assert.equal(l.pathWidth, 20);
    assert.equal(layout(140, [], 70).pathWidth, 70);
    const n = layout(100, ['cpu:run_seconds', 'cpu:nvcsw', 'cpu:migrations'], 10);
    assert.ok(n.columns.length < 11 && n.pathWidth >= 20);
  });
});

describe('histogram bars', () => {
  it('one line per bucket from the first to the last with waits; bars scaled to the largest', () => {
    const h = { bounds: [256, 512, 1024, 2048, 4096], cum: [0, 10, 10, 15, 15], count: 16 };
    const lines = histogramBars(h, 60);
    assert.equal(lines.length, 5); // <512, <1024 (empty), <2048, <4096 (empty), >=4096
    assert.match(lines[0]!, /^ *< 512ns #+ +10$/);
    assert.match(lines[1]!, /^ *< 1.02us +0$/);
    assert.match(lines[4]!, /^ *>=4.10us #+ +1$/);
    const bar = (s: string) => (s.match(/#+/)?.[0] ?? '').length;
    assert.ok(bar(lines[0]!) > bar(lines[2]!) && bar(lines[2]!) > bar(lines[4]!));
    assert.deepEqual(histogramBars({ bounds: [1], cum: [0], count: 0 }, 60), ['(no waits in the interval)']);
  });
});

describe('keys', () => {
  it('parses arrows, page keys, Enter, Esc, Ctrl-C and characters', () => {
    assert.deepEqual(parseKeys('\x1b[Aj\x1b[6~\r\x1b'), ['up', { char: 'j' }, 'pagedown', 'enter', 'escape']);
    assert.deepEqual(parseKeys('\x03'), ['ctrl-c']);
    assert.deepEqual(parseKeys('/ab\x7f'), [{ char: '/' }, { char: 'a' }, { char: 'b' }, 'backspace']);
    assert.deepEqual(parseKeys('\x1b[1;5Cq'), [{ char: 'q' }]); // an unknown sequence is dropped
  });
});

describe('generic columns', () => {
  it('show a view name with control bytes escaped, never raw', () => {
    const c = genericColumn('ev\x1b]0;x\x07il:switches_total');
    assert.ok(!/[\x00-\x1f]/.test(c.header), JSON.stringify(c.header));
    assert.equal(c.header, printable('ev\x1b]0;x\x07il:switches_total'));
  });
});
