import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_hvm_op,
  __HYPERVISOR_memory_op,
  CALLBACKOP_register,
  CALLBACKTYPE_event,
  DOMID_SELF,
  EINVAL,
  ENOSYS,
  EOPNOTSUPP,
  EPERM,
  EVTCHNOP_send,
  HVM_PARAM_CALLBACK_IRQ,
  HVM_PARAM_STORE_EVTCHN,
  HVM_PARAM_STORE_PFN,
  HVMOP_get_param,
  HVMOP_set_param,
  XENMAPSPACE_gmfn,
  XENMAPSPACE_shared_info,
  XENMEM_add_to_physmap,
} from './abi/index.js';
import type { XenGuest } from './guest/xen-guest.js';
import type { HypercallArgs, XenHvmParam } from './hypercall.js';
import { GuestFault } from './memory.js';
import { makeHost, type TestHost } from './test-fixture.js';
import { TP_HYPERCALL, TP_VMEXIT } from './trace-points.js';

function hc(h: TestHost, g: XenGuest, args: HypercallArgs): number {
  return h.run(h.hv.hypercall(g.domain.vcpus[0]!, args));
}
function xenTime(h: TestHost, g: XenGuest, f: () => void): number {
  const before = h.hv.snapshot();
  f();
  return h.hv.cpuReport(before).domains.find((d) => d.domid === g.domid)!.byCategory.xen;
}

describe('hypercall entry', () => {
  it('counts every hypercall per domain by name, with a VMCALL exit for HVM and a trap for PV', () => {
    const h = makeHost();
    const hvm = h.guest('hvm');
    const pv = h.guest('pv', { kind: 'pv' });
    for (const g of [hvm, pv]) {
      const before = new Map(g.domain.counters.hypercalls);
      hc(h, g, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send, arg: { port: 0 } });
      hc(h, g, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send, arg: { port: 0 } });
      assert.equal((g.domain.counters.hypercalls.get('event_channel_op.send') ?? 0) - (before.get('event_channel_op.send') ?? 0), 2);
    }
    // Boot: add_to_physmap (shared info), init_control (the FIFO ABI of a Linux 3.18 kernel, one
    // vCPU), set_param or callback register, add_to_physmap (grant frame); then 2 sends.
    assert.deepEqual([...hvm.domain.counters.hypercalls.keys()].sort(), [
      'event_channel_op.init_control',
      'event_channel_op.send',
      'hvm_op.set_param',
      'memory_op.add_to_physmap',
    ]);
    assert.equal(hvm.domain.counters.exits.vmcall, 6);
    assert.equal(hvm.domain.counters.pvTraps, 0);
    // Each time it goes idle the HVM guest HLTs (an exit, no hypercall), the PV one calls SCHEDOP_block.
    assert.ok(hvm.domain.counters.exits.hlt > 0);
    assert.equal(hvm.domain.counters.exitTotal, 6 + hvm.domain.counters.exits.hlt);
    assert.deepEqual([...pv.domain.counters.hypercalls.keys()].sort(), [
      'callback_op.register',
      'event_channel_op.init_control',
      'event_channel_op.send',
      'memory_op.add_to_physmap',
      'sched_op.block',
    ]);
    assert.equal(pv.domain.counters.exitTotal, 0);
    const blocks = pv.domain.counters.hypercalls.get('sched_op.block')!;
    assert.ok(blocks > 0);
    assert.equal(pv.domain.counters.pvTraps, 6 + blocks);
    assert.equal(h.dom0.domain.counters.exitTotal, 0, 'other domains untouched');
  });

  it('charges the HVM round trip (Dall: 1228 cycles) or the PV trap, plus the handler, as Xen time of the caller', () => {
    const h = makeHost();
    const hvm = h.guest('hvm');
    const pv = h.guest('pv', { kind: 'pv' });
    const c = h.hv.costs;
    const unknown = { nr: 99, cmd: 0 } as unknown as HypercallArgs;
    assert.equal(
      xenTime(h, hvm, () => assert.equal(hc(h, hvm, unknown), -ENOSYS)),
      c.exit.vmcall + c.vmentry,
    );
    assert.equal(
      xenTime(h, pv, () => assert.equal(hc(h, pv, unknown), -ENOSYS)),
      c.pvTrap,
    );
    assert.equal(
      xenTime(h, hvm, () => hc(h, hvm, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send, arg: { port: 0 } })),
      c.exit.vmcall + c.evtchnSend + c.vmentry,
    );
    assert.equal(
      xenTime(h, pv, () => hc(h, pv, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send, arg: { port: 0 } })),
      c.pvTrap + c.evtchnSend,
    );
    assert.equal(hvm.domain.counters.hypercalls.get('hypercall_99'), 1);
  });

  it('fires the hypercall and vmexit trace points', () => {
    const h = makeHost();
    const g = h.guest('g');
    const seen: string[] = [];
    h.env.trace.on(TP_HYPERCALL, (_t, p) => seen.push(`hc ${p.domid} ${p.name}`));
    h.env.trace.on(TP_VMEXIT, (_t, p) => seen.push(`exit ${p.domid} ${p.reason}`));
    hc(h, g, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send, arg: { port: 0 } });
    assert.deepEqual(seen, [`hc ${g.domid} event_channel_op.send`, `exit ${g.domid} vmcall`]);
  });

  it('hvm_op: a guest sets its callback (vector type) but no other parameter; Dom0 sets any; the guest reads what it may', () => {
    const h = makeHost();
    const g = h.guest('g');
    const pv = h.guest('pv', { kind: 'pv' });
    const param = (caller: XenGuest, cmd: typeof HVMOP_set_param | typeof HVMOP_get_param, arg: XenHvmParam): number =>
      hc(h, caller, { nr: __HYPERVISOR_hvm_op, cmd, arg });
    assert.equal(g.domain.callbackVector, 0xf3, 'set at boot');
    assert.equal(param(g, HVMOP_set_param, { domid: DOMID_SELF, index: HVM_PARAM_STORE_PFN, value: 5n }), -EPERM);
    assert.equal(param(h.dom0, HVMOP_set_param, { domid: g.domid, index: HVM_PARAM_STORE_PFN, value: 0xfeffen }), 0);
    const get: XenHvmParam = { domid: DOMID_SELF, index: HVM_PARAM_STORE_PFN, value: 0n };
    assert.equal(param(g, HVMOP_get_param, get), 0);
    assert.equal(get.value, 0xfeffen);
    h.hv.setHvmParam(g.domain, HVM_PARAM_STORE_EVTCHN, 3n); // the toolstack, at build
    const evt: XenHvmParam = { domid: DOMID_SELF, index: HVM_PARAM_STORE_EVTCHN, value: 0n };
    assert.equal(param(g, HVMOP_get_param, evt), 0);
    assert.equal(evt.value, 3n);
    assert.equal(
      param(g, HVMOP_set_param, { domid: DOMID_SELF, index: HVM_PARAM_CALLBACK_IRQ, value: 5n }),
      -EOPNOTSUPP,
      'GSI delivery is not modelled',
    );
    assert.equal(param(g, HVMOP_set_param, { domid: pv.domid, index: HVM_PARAM_CALLBACK_IRQ, value: 0n }), -EINVAL, 'PV target');
    assert.equal(param(g, HVMOP_set_param, { domid: DOMID_SELF, index: 1000, value: 0n }), -EINVAL);
    assert.equal(param(g, HVMOP_set_param, { domid: DOMID_SELF, index: HVM_PARAM_CALLBACK_IRQ, value: 0n }), 0);
    assert.equal(g.domain.callbackVector, null, '0 disables the callback');
  });

  it('callback_op exists only for PV guests', () => {
    const h = makeHost();
    const g = h.guest('g');
    assert.equal(
      hc(h, g, { nr: __HYPERVISOR_callback_op, cmd: CALLBACKOP_register, arg: { type: CALLBACKTYPE_event, handler: function* () {} } }),
      -ENOSYS,
    );
  });

  it('add_to_physmap: the shared-info page moves to the new frame; -EINVAL for idx ≠ 0; others -EPERM; unmodelled spaces -EOPNOTSUPP', () => {
    const h = makeHost();
    const g = h.guest('g');
    const other = h.guest('other');
    const old = g.domain.sharedInfoGfn!;
    const add = (caller: XenGuest, domid: number, space: number, idx: number, gpfn: number): number =>
      hc(h, caller, { nr: __HYPERVISOR_memory_op, cmd: XENMEM_add_to_physmap, arg: { domid, space, idx, gpfn } });
    const to = g.frames.allocUnpopulated();
    assert.equal(add(g, DOMID_SELF, XENMAPSPACE_shared_info, 0, to), 0);
    assert.throws(() => g.mem.readU8(old * 4096), GuestFault);
    g.domain.sharedInfo.setUpcallMask(0, true);
    assert.equal(g.mem.readU8(to * 4096 + 1), 1, "Xen's page, seen through the guest frame");
    assert.equal(add(g, DOMID_SELF, XENMAPSPACE_shared_info, 1, to), -EINVAL);
    assert.equal(add(other, g.domid, XENMAPSPACE_shared_info, 0, to), -EPERM);
    assert.equal(add(g, DOMID_SELF, XENMAPSPACE_gmfn, 0, to), -EOPNOTSUPP);
  });
});
