import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TcpControlBlock } from './tcp-control-block.js';
import { sackBlocksToSend, sackNoteOfo, sackOptionLen, sackRcvAdvanced } from './tcp-sack.js';

/** The receiver fields the SACK block list uses. */
const receiver = (tsOk: boolean): TcpControlBlock => ({ sackOk: true, tsOk, rcvSacks: [], rcvNxt: 1000 }) as unknown as TcpControlBlock;

describe('SACK blocks a receiver reports (RFC 2018 4)', () => {
  it('the block of the most recent segment comes first; touching blocks coalesce; 3 are sent beside timestamps, 4 without', () => {
    const t = receiver(true);
    for (const s of [2000, 4000, 6000, 8000]) sackNoteOfo(t, s, s + 500);
    assert.deepEqual(sackBlocksToSend(t), [8000, 8500, 6000, 6500, 4000, 4500]);
    assert.equal(sackOptionLen(t), 4 + 3 * 8);
    sackNoteOfo(t, 2500, 4000); // joins the 2000 and 4000 blocks and goes first
    assert.deepEqual(sackBlocksToSend(t), [2000, 4500, 8000, 8500, 6000, 6500]);
    const n = receiver(false);
    for (const s of [2000, 4000, 6000, 8000, 10000]) sackNoteOfo(n, s, s + 500);
    assert.deepEqual(sackBlocksToSend(n), [10000, 10500, 8000, 8500, 6000, 6500, 4000, 4500], 'four kept (TCP_NUM_SACKS), the oldest forgotten');
    assert.equal(sackOptionLen(n), 4 + 4 * 8);
  });

  it('blocks that rcv_nxt passes are dropped, and none are sent without SACK-permitted', () => {
    const t = receiver(true);
    sackNoteOfo(t, 2000, 2500);
    sackNoteOfo(t, 3000, 3500);
    (t as { rcvNxt: number }).rcvNxt = 2500;
    sackRcvAdvanced(t);
    assert.deepEqual(sackBlocksToSend(t), [3000, 3500]);
    (t as { sackOk: boolean }).sackOk = false;
    assert.equal(sackBlocksToSend(t), undefined);
    assert.equal(sackOptionLen(t), 0);
  });
});
