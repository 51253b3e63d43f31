/**
 * Logging: fields of any depth and shape are written as one JSON line (no
 * throw, bounded), and an exception nobody catches is logged with its stack
 * and ends the daemon with a non-zero status (crash-only: the supervisor
 * restarts it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeLogger } from '../../src/daemon/log.js';
import { Daemon, daemonEnv } from '../daemon.js';

function logOne(fields: Record<string, unknown>): Record<string, unknown> {
  const lines: string[] = [];
  makeLogger('debug', (l) => lines.push(l))('info', 'm', fields);
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith('\n') && !lines[0]!.slice(0, -1).includes('\n'), 'one line');
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

describe('log fields', () => {
  it('serialises bigints, cycles, errors, deep and huge values safely', () => {
    const cyc: Record<string, unknown> = { a: 1n };
    cyc['self'] = cyc;
    let deep: Record<string, unknown> = { leaf: 2n };
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const err = new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'E_X', n: 3n }) });
    const getter = Object.defineProperty({}, 'boom', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    const rec = logOne({
      nested: { ids: [1n, 2n], m: new Map([['k', 5n]]) },
      cyc,
      deep,
      err,
      getter,
      big: 'x'.repeat(1 << 20),
      many: Array.from({ length: 10000 }, (_, i) => i),
      fn: () => 1,
      buf: Buffer.alloc(10),
      nan: Number.NaN,
      msg: 'not the message',
    });
    assert.equal(rec['msg'], 'm');
    assert.equal(rec['field_msg'], 'not the message');
    assert.deepEqual((rec['nested'] as Record<string, unknown>)['ids'], ['1', '2']);
    assert.deepEqual((rec['nested'] as Record<string, unknown>)['m'], { k: '5' });
    assert.equal((rec['cyc'] as Record<string, unknown>)['self'], '[circular]');
    assert.match(JSON.stringify(rec['deep']), /\[too deep\]/);
    const e = rec['err'] as Record<string, unknown>;
    assert.equal(e['message'], 'outer');
    assert.match(String(e['stack']), /outer/);
    assert.equal((e['cause'] as Record<string, unknown>)['code'], 'E_X');
    assert.match(String((rec['getter'] as Record<string, unknown>)['boom']), /getter threw/);
    assert.ok(String(rec['big']).length < 20000);
    assert.ok((rec['many'] as unknown[]).length <= 51);
    assert.equal(rec['nan'], 'NaN');
  });
});

describe('uncaught exception', () => {
  it('is logged with its stack and ends the daemon with a non-zero status', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env, { env: { CGVIEW_TEST_UNCAUGHT: '1' }, waitReady: false });
    const exit = await d.waitExit(15000);
    assert.equal(exit.code, 70, `exit ${JSON.stringify(exit)}\n${d.stderr}`);
    const rec = d.logs().find((r) => r['msg'] === 'uncaught exception; exiting');
    assert.ok(rec, d.stderr);
    const stack = String((rec['error'] as Record<string, unknown>)['stack']);
    assert.match(stack, /CGVIEW_TEST_UNCAUGHT/);
    assert.match(stack, /\n\s+at /, 'with its stack');
  });
});
