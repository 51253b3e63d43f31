/**
 * `cgview status` in words: the collector line (how it started, its
 * programs) and the control socket's counters, checked against what the
 * test did (one collector started, a known number of bad requests).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { Daemon, daemonEnv } from '../daemon.js';

/** Sends raw lines on the control socket and waits for as many answers. */
async function sendRaw(socket: string, lines: string[]): Promise<void> {
  const sock = net.connect(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = 0;
      sock.setEncoding('latin1');
      sock.on('data', (s: string) => {
        seen += s.split('\n').length - 1;
        if (seen >= lines.length) resolve();
      });
      sock.once('error', reject);
      sock.write(lines.map((l) => `${l}\n`).join(''));
    });
  } finally {
    sock.destroy();
  }
}

describe('cgview status, human form', () => {
  it('says how the collector started, names its programs, and counts bad requests', async () => {
    const env = daemonEnv();
    const d = await Daemon.start(env);
    await d.ok(['pin', 'sched_lat', env.bpffs, '--inherit', '--cgroup', env.cgroupRoot]);
    await sendRaw(env.socket, ['not json', '{"op":"ls","args":{"dir":123}}', '{"op":"nope"}']);
    const text = await d.ok(['status']);
    const collector = text.split('\n').find((l) => l.startsWith('collector sched_lat@'));
    assert.ok(collector, text);
    // A fresh private directory: the collector was started, not adopted.
    assert.match(collector, /^collector sched_lat@0: started \d{4}-\d\d-\d\dT/);
    for (const p of ['sl_switch', 'sl_wakeup', 'sl_wakeup_new', 'sl_migrate', 'sl_rmdir'])
      assert.match(collector, new RegExp(`\\b${p}\\b`), `${p} in ${collector}`);
    assert.doesNotMatch(text, /\{"/, 'no raw JSON in the human form');
    // The three raw lines above are the only bad requests; the status client is the one connected.
    assert.match(text, /^control socket: 1 clients; 3 bad, 0 denied requests;/m);
    await d.ok(['unpin', `${env.bpffs}/sched_lat`]);
    await d.stop();
  });
});
