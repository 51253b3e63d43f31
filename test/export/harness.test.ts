/** test/prometheus.ts itself: a real Prometheus scrapes a tiny server of the test's own and answers queries. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import { Prometheus, promtoolCheckMetrics } from '../prometheus.js';

describe('test/prometheus.ts', () => {
  let server: http.Server | undefined;
  after(() => server?.close());
  it('scrapes a target every second and answers instant queries', async () => {
    let n = 0;
    server = http.createServer((_req, res) => {
      n++;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(`# TYPE harness_scrapes_total counter\nharness_scrapes_total ${n}\n`);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const p = await Prometheus.start({ targets: [`127.0.0.1:${port}`] });
    await p.waitScrapes(3);
    const v = await p.value('harness_scrapes_total');
    assert.ok(v !== undefined && v >= 3 && v <= n, `harness_scrapes_total ${v}, served ${n}`);
    await p.stop();
    assert.equal(promtoolCheckMetrics('# HELP a_total x\n# TYPE a_total counter\na_total 1\n').code, 0);
    assert.notEqual(promtoolCheckMetrics('a b c\n').code, 0);
  });
});
