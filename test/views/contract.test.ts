/**
 * The BPF object contract (src/views/contract.gen.ts) is what the built
 * objects say, and the collectors and built-in views use it whole: every
 * program of a collector object is attached, every view's program is an
 * iter/cgroup program of its object, rodata sizes match.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { collectorDefs } from '../../src/views/collectors.js';
import { CONTRACT, type ObjectFile } from '../../src/views/contract.gen.js';
import { builtinViews, parseViewSpec } from '../../src/views/registry.js';
import { BPF_BUILD, REPO } from '../helpers.js';

describe('BPF object contract', () => {
  it('contract.gen.ts is up to date with build/bpf (scripts/gen-contract.mjs --check)', () => {
    execFileSync(
      process.execPath,
      [
        path.join(REPO, 'scripts/gen-contract.mjs'),
        BPF_BUILD,
        path.join(REPO, 'src/views/contract.gen.ts'),
        '--check',
      ],
      { stdio: 'pipe' },
    );
  });

  it('collectors attach every program of their object and name only maps and rodata it has', () => {
    for (const [name, def] of Object.entries(collectorDefs())) {
      const c = CONTRACT[def.object];
      assert.deepEqual([...def.programs].sort(), Object.keys(c.programs).sort(), `${name}: programs`);
      for (const m of def.shared) assert.ok((c.maps as readonly string[]).includes(m), `${name}: map ${m}`);
      const rodata = def.rodata(0);
      for (const [k, v] of Object.entries(rodata))
        assert.equal(v.length, (c.rodata as Record<string, number>)[k], `${name}: rodata ${k} size`);
    }
  });

  it('each built-in view is an iter/cgroup program of its own object; only sched_lat_tree needs kfuncs', () => {
    for (const v of builtinViews()) {
      const def = parseViewSpec(v);
      const c = CONTRACT[path.basename(def.object) as ObjectFile];
      assert.equal((c.programs as Record<string, string>)[def.program], 'iter/cgroup', v);
      assert.deepEqual(def.kfuncs, [...c.kfuncs], `${v}: kfuncs`);
    }
    assert.deepEqual(parseViewSpec('sched_lat').kfuncs, [], 'sched_lat needs no kfunc (runs on 6.6)');
    assert.ok(parseViewSpec('sched_lat_tree').kfuncs?.includes('bpf_iter_css_new'));
  });
});
