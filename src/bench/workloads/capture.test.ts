import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SimEnvironment, US } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import { directPair } from '../../net/pair.js';
import { PcapWriter } from '../../net/iface/pcap.js';
import { tcpStream } from './index.js';

function tshark(file: string, ...args: string[]): string[] {
  const r = spawnSync(
    'tshark',
    ['-n', '-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', ...args],
    { encoding: 'utf8' },
  );
  if (r.error !== undefined) assert.fail(`tshark could not run (${r.error.message}): install it (Debian: apt-get install tshark; .ci/run does)`);
  assert.equal(r.status, 0, `tshark failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim().length > 0);
}

describe('tshark reads our captures', () => {
  it('a TCP transfer with loss: no malformed packets, no bad checksums, and tshark counts our retransmissions', () => {
    const writer = new PcapWriter();
    const env = new SimEnvironment({ seed: 7 });
    const pair = directPair(env, Profile.load('default'), { bandwidth: 1e9, delay: 50 * US, loss: 0.01, pcap: writer });
    const p = tcpStream(env, { client: pair.client, server: pair.server, serverAddr: pair.serverAddr }, { bytes: 3_000_000 });
    env.run({ until: p });
    const ours = pair.client.tcp.stats.retransSegs;
    assert.ok(ours > 10, `only ${ours} retransmissions`);
    const dir = mkdtempSync(join(tmpdir(), 'hv2m-pcap-'));
    try {
      const file = join(dir, 'loss.pcap');
      writeFileSync(file, writer.bytes());
      const all = tshark(file, '-T', 'fields', '-e', 'frame.number');
      assert.equal(all.length, writer.frames);
      assert.deepEqual(tshark(file, '-Y', '_ws.malformed', '-T', 'fields', '-e', 'frame.number'), [], 'malformed packets');
      assert.deepEqual(
        tshark(
          file,
          '-Y',
          'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad" || _ws.expert.group == "Checksum"',
          '-T',
          'fields',
          '-e',
          'frame.number',
        ),
        [],
        'checksum errors',
      );
      const good = tshark(file, '-Y', 'tcp.checksum.status == "Good" && ip.checksum.status == "Good"', '-T', 'fields', '-e', 'frame.number');
      const arp = tshark(file, '-Y', 'arp', '-T', 'fields', '-e', 'frame.number');
      assert.equal(arp.length, 2, 'one ARP request and its reply');
      assert.equal(good.length, writer.frames - arp.length, 'tshark verified the IP and TCP checksums of every other frame');
      // The capture is on the sender's side of the link, where nothing is reordered: a segment
      // tshark calls out-of-order (its heuristic for a resend soon after a higher one) is a
      // retransmission too.
      const retrans = tshark(
        file,
        '-Y',
        'tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission || tcp.analysis.out_of_order',
        '-T',
        'fields',
        '-e',
        'frame.number',
      );
      assert.equal(retrans.length, ours, `tshark sees ${retrans.length} retransmissions, we counted ${ours}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
