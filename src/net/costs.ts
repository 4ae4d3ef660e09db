import type { Profile } from '../profile/index.js';

/**
 * The guest stack's costs and protocol constants, read once from a cost profile into plain
 * fields (STYLE.md habit 7). The same for every device below the stack: there are no
 * per-path knobs. Times in ns, per-byte costs in ns/B.
 */
export interface StackCosts {
  syscall: number;
  copyPerByte: number;
  csumPerByte: number;
  txPacket: number;
  rxPacket: number;
  gsoSegment: number;
  irq: number;
  wakeup: number;
  txQueueLen: number;
  rxRing: number;
  maxBacklog: number;
  napiWeight: number;
  netdevBudget: number;
  netRxTime: number;
  softirqMaxTime: number;
  softirqMaxRestart: number;
  arpRetrans: number;
  arpMaxProbes: number;
  arpReachable: number;
  arpUnresQueueBytes: number;
  fragTimeout: number;
  fragHighThresh: number;
  fragLowThresh: number;
  rtoMin: number;
  rtoMax: number;
  rtoInit: number;
  delackMin: number;
  delackMax: number;
  atoMaxBulk: number;
  maxQuickAcks: number;
  timeWait: number;
  finTimeout: number;
  synRetries: number;
  retries2: number;
  initCwnd: number;
  reordering: number;
  rmemDefault: number;
  rmemMax: number;
  wmemDefault: number;
  wmemMax: number;
  limitOutputBytes: number;
  backlog: number;
  udpRmem: number;
  udpWmem: number;
}

export function stackCosts(p: Profile): StackCosts {
  return {
    syscall: p.ns('net.syscall'),
    copyPerByte: p.nsPerByte('net.copy'),
    csumPerByte: p.nsPerByte('net.csum'),
    txPacket: p.ns('net.tx.packet'),
    rxPacket: p.ns('net.rx.packet'),
    gsoSegment: p.ns('net.tx.gsoSegment'),
    irq: p.ns('net.irq'),
    wakeup: p.ns('net.wakeup'),
    txQueueLen: p.count('net.dev.txQueueLen'),
    rxRing: p.count('net.dev.rxRing'),
    maxBacklog: p.count('net.dev.maxBacklog'),
    napiWeight: p.count('net.napi.weight'),
    netdevBudget: p.count('net.softirq.budget'),
    netRxTime: p.ns('net.softirq.netRxTime'),
    softirqMaxTime: p.ns('net.softirq.maxTime'),
    softirqMaxRestart: p.count('net.softirq.maxRestart'),
    arpRetrans: p.ns('net.arp.retransTime'),
    arpMaxProbes: p.count('net.arp.maxProbes'),
    arpReachable: p.ns('net.arp.reachableTime'),
    arpUnresQueueBytes: p.bytes('net.arp.unresQueueBytes'),
    fragTimeout: p.ns('net.ip.fragTimeout'),
    fragHighThresh: p.bytes('net.ip.fragHighThresh'),
    fragLowThresh: p.bytes('net.ip.fragLowThresh'),
    rtoMin: p.ns('net.tcp.rtoMin'),
    rtoMax: p.ns('net.tcp.rtoMax'),
    rtoInit: p.ns('net.tcp.rtoInit'),
    delackMin: p.ns('net.tcp.delackMin'),
    delackMax: p.ns('net.tcp.delackMax'),
    atoMaxBulk: p.ns('net.tcp.atoMaxBulk'),
    maxQuickAcks: p.count('net.tcp.maxQuickAcks'),
    timeWait: p.ns('net.tcp.timeWait'),
    finTimeout: p.ns('net.tcp.finTimeout'),
    synRetries: p.count('net.tcp.synRetries'),
    retries2: p.count('net.tcp.retries2'),
    initCwnd: p.count('net.tcp.initCwnd'),
    reordering: p.count('net.tcp.reordering'),
    rmemDefault: p.bytes('net.tcp.rmemDefault'),
    rmemMax: p.bytes('net.tcp.rmemMax'),
    wmemDefault: p.bytes('net.tcp.wmemDefault'),
    wmemMax: p.bytes('net.tcp.wmemMax'),
    limitOutputBytes: p.bytes('net.tcp.limitOutputBytes'),
    backlog: p.count('net.tcp.backlog'),
    udpRmem: p.bytes('net.udp.rmemDefault'),
    udpWmem: p.bytes('net.udp.wmemDefault'),
  };
}

/** Nanoseconds for `bytes` at `perByte` ns/B, rounded to an integer. */
export function perBytes(bytes: number, perByte: number): number {
  return Math.round(bytes * perByte);
}
