import type { Env, ProcessGenerator, Work } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import {
  ARP_REQUEST,
  MAC_BROADCAST,
  isSocketError,
  type DeviceFeatures,
  type DeviceUpper,
  type NetDevice,
  type Packet,
  type SocketError,
  type TcpSocket,
} from '../net/index.js';
import { PAGE_SIZE } from '../xen/abi/index.js';
import { bootGuestKernel, type Domain, type GuestMemory } from '../xen/index.js';
import { Hv2mNic, PvNic, type AttachedNic } from '../vnet/index.js';
import { Host, type Guest } from './host.js';

/**
 * Live migration of a running guest from one host to another, in essentials as Xen's pre-copy
 * does it (libxl/libxc `xc_domain_save` and `xc_domain_restore`, Xen 4.5; the profile's
 * release). The design:
 *
 * **What moves, what is rebuilt.** A guest is its kernel's state — network stack, sockets,
 * timers, queues, the frame allocator, the packet-buffer pool — and its RAM; in the model the
 * former are objects (KernelSide, Stack…) that hold references into the latter. The kernel
 * objects move as they are: they run on the kernel's `MovableCpu`s, which are rebound to the
 * vCPUs of the new domain (work queued on the old vCPUs moves with its remaining time, in
 * order). The RAM is copied for real: every page's bytes go from the source Dom0 to the target
 * Dom0 over a TCP connection between them, through their bridges, NICs and the wire — so the
 * migration stream competes with guest traffic on the link — and restore writes them into the
 * new domain's own pages. At the end the model checks that the new domain's copy equals the
 * guest's RAM byte for byte (a page missed would be a model bug and fails loudly), and the new
 * domain then takes over the guest's RAM object (`Domain.adoptMemory`) so the kernel's
 * existing views stay valid — the bytes are the same, only the model's handle changes.
 * What belonged to the old host is rebuilt on the new one as a resuming Linux does it
 * (xen_hvm_post_suspend, gnttab_resume, xs_resume, netfront_resume): shared info and the
 * grant table are mapped again, xenbus reconnects to the new xenstored, and each NIC is
 * attached again as a new vif on the target's Dom0 whose frontend connects with the same MAC;
 * the stack's interface keeps its identity (`Interface.replaceDevice`), its queued packets go
 * to the new driver, and it sends a gratuitous ARP (netif_notify_peers) so that every bridge
 * learns where the MAC now is.
 *
 * **Log-dirty.** Xen write-protects the guest's pages and sets a bit on the first write to
 * each after every CLEAN (XEN_DOMCTL_SHADOW_OP_CLEAN); the model cannot trap a store into a
 * typed array, so at each CLEAN it compares every page with the bytes last sent for it: a page
 * is dirty if its contents changed — whoever changed them, the guest's vCPUs or a grant copy
 * or DMA into it. A page rewritten with the same bytes is not counted (Xen would resend it):
 * the pages sent are a lower bound of Xen's. The write faults log-dirty costs the guest are
 * not charged.
 *
 * **Rounds** (xc_domain_save, Xen 4.5): round 1 sends every RAM page; each later round sends
 * the pages dirtied during the one before. After a round, the live phase ends if the round
 * sent fewer than `migration.dirtyThreshold` pages, or `migration.maxIterations` rounds are
 * done, or more than `migration.maxFactor` × the guest's memory has been sent. Then the
 * stop-and-copy: the guest's vCPUs are paused, its vifs on the source are taken away (the
 * source's netback stops writing into it; frames in flight to it are lost, as they are on
 * Xen: what netback had put in its rings the resumed netfront discards), the pages dirtied
 * since the last CLEAN are sent, and the guest resumes on the target. Pause = from the pause
 * to the guest running again on the target; the network is back once its NICs have
 * reconnected and the gratuitous ARP is out (`networkGapNs`).
 *
 * **HV²M.** Before anything, each hv2m NIC's module is unloaded: the guest stops announcing,
 * every channel is ended in order (frames held meanwhile go out of the pv NIC, in order: the
 * path's graceful shutdown), so its flows are on the standard path while the guest is still
 * running on the source; after it lands, the new module announces it to the target's
 * hv2m-discoveryd, and channels form with the guests now co-resident.
 *
 * *(ours)* The stream: records of up to 1024 pages (libxc's MAX_BATCH_SIZE), each a header
 * {type u32, count u32}, the pfns (u64 each), the pages; an END record closes it. Sent to TCP
 * port 8002 (xend's relocation port) of the target Dom0's address.
 */

/** What one migration did. */
export interface MigrationResult {
  guest: string;
  from: string;
  to: string;
  oldDomid: number;
  newDomid: number;
  /** When it began, and its whole duration (start to the guest's NICs back and its gratuitous ARP sent), ns. */
  startedAt: number;
  totalNs: number;
  /** The guest not running: from its vCPUs' pause on the source to its kernel running on the target, ns. */
  pauseNs: number;
  /** From the pause to the NICs reconnected on the target and the gratuitous ARP sent, ns. */
  networkGapNs: number;
  /** Live rounds (round 1 sends every page) and the stop-and-copy round. */
  rounds: { round: number; pages: number; ns: number }[];
  liveRounds: number;
  /** Pages sent in all, and in the stop-and-copy round. */
  pagesSent: number;
  finalPages: number;
  /** Bytes of the migration stream (records included). */
  streamBytes: number;
  /** Grants the old netfront could not end (0 when the backend went first, as it does). */
  stuckGrants: number;
}

export interface MigrationOptions {
  /** Overrides of the profile's migration.* figures (a scenario's). */
  maxIterations?: number;
  dirtyThreshold?: number;
  maxFactor?: number;
  /** TCP port of the target Dom0's receiver (default 8002). */
  port?: number;
  /**
   * Told at each step, at its instant: `switched` (HV²M channels ended, flows on the standard
   * path), `paused` (the guest stopped on the source), `resumed` (running on the target),
   * `reconnected` (NICs back, gratuitous ARP sent).
   */
  onPhase?: (phase: 'switched' | 'paused' | 'resumed' | 'reconnected') => void;
}

/** A migration that cannot be done (named cause), or a stream that broke. */
export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const REC_PAGE_DATA = 1;
const REC_END = 2;
const MAX_BATCH = 1024;
const HDR = 8;

/** The page's bytes, a never-touched page reading as zeros (null). */
function samePage(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  if (a === b) return true;
  const wa = a ? new Uint32Array(a.buffer, a.byteOffset, PAGE_SIZE / 4) : null;
  const wb = b ? new Uint32Array(b.buffer, b.byteOffset, PAGE_SIZE / 4) : null;
  for (let i = 0; i < PAGE_SIZE / 4; i++) if ((wa === null ? 0 : wa[i]!) !== (wb === null ? 0 : wb[i]!)) return false;
  return true;
}

function ok<T>(what: string, v: T | SocketError): T {
  if (isSocketError(v)) throw new MigrationError(`migration stream: ${what}: ${v.toString()}`);
  return v;
}

/** Where a resuming guest's interface points while its NIC reconnects: carrier off, the queue stopped (packets wait in it). */
class ReconnectingDevice implements NetDevice {
  readonly name: string;
  readonly mac: number;
  readonly mtu: number;
  readonly features: DeviceFeatures;
  constructor(was: NetDevice) {
    this.name = was.name;
    this.mac = was.mac;
    this.mtu = was.mtu;
    this.features = was.features;
  }
  attach(_upper: DeviceUpper): void {}
  xmit(_pkt: Packet): boolean {
    return false;
  }
}

function pvOf(a: AttachedNic): PvNic {
  if (a instanceof Hv2mNic) return a.pv;
  if (a instanceof PvNic) return a;
  throw new MigrationError('only pv and hv2m NICs can migrate');
}

/** Migrates guest `name` from host `from` to host `to` (xl migrate) — a process; see the design above. */
export function* migrateGuest(
  env: Env,
  profile: Profile,
  from: Host,
  to: Host,
  name: string,
  opts: MigrationOptions = {},
): ProcessGenerator<MigrationResult> {
  const g: Guest = from.guest(name);
  if (from === to) throw new MigrationError(`${name}: already on ${to.name}`);
  if (to.guests.has(name)) throw new MigrationError(`${to.name} already has a guest named "${name}"`);
  const srcIf = from.dom0.network.iface;
  const dstIf = to.dom0.network.iface;
  if (srcIf === null || dstIf === null)
    throw new MigrationError(`migrating ${name} from ${from.name} to ${to.name}: both Dom0s need an address (dom0.ip) for the migration stream`);
  for (const n of g.nics) {
    if (!(n.attached instanceof Hv2mNic || n.attached instanceof PvNic))
      throw new MigrationError(`${name}: NIC ${n.devid} is on path "${n.spec.path}", which cannot migrate (pv and hv2m can)`);
    if (to.paths.get(n.spec.path) === undefined) throw new MigrationError(`${name}: ${to.name} does not know path "${n.spec.path}"`);
  }
  const maxIters = opts.maxIterations ?? profile.count('migration.maxIterations');
  const threshold = opts.dirtyThreshold ?? profile.count('migration.dirtyThreshold');
  const maxFactor = opts.maxFactor ?? profile.count('migration.maxFactor');
  const port = opts.port ?? 8002;
  const startedAt = env.now;

  // HV²M: channels ended in order while the guest still runs here.
  for (const n of g.nics) if (n.attached instanceof Hv2mNic) yield* n.attached.unloadModule();
  const phase = opts.onPhase ?? ((): void => undefined);
  phase('switched');

  // The target domain, built and not run (libxl's restore side).
  const d = g.desc;
  const rec = yield* to.toolstack.createGuest({
    name: d.name,
    kind: d.type,
    vcpus: d.vcpus,
    memoryMiB: d.memoryMiB,
    ...(d.weight !== undefined ? { weight: d.weight } : {}),
    ...(d.cap !== undefined ? { cap: d.cap } : {}),
    ...(d.pinning !== undefined ? { pinning: d.pinning } : {}),
    ...(d.tenant !== undefined ? { tenant: d.tenant } : {}),
  });
  const newDom = rec.domain;
  if (g.nics.some((n) => Host.needsDiscoveryd(n.spec.path))) yield* to.ensureDiscoveryd();
  const fresh = newDom.memory;
  const oldDom: Domain = g.domain;
  const src: GuestMemory = oldDom.memory;
  const nPages = src.ramPages;

  // The receiver in the target's Dom0.
  const listener = ok('listen', to.dom0.stack.tcp.listen(port));
  const received = env.process(receive(env, listener, fresh), `migrate ${name}: receiver on ${to.name}`);
  const sock = from.dom0.stack.tcp.socket();
  ok('connect', yield* sock.connect(dstIf.address, port));

  const lastSent = new Map<number, Uint8Array>();
  let streamBytes = 0;
  function* send(gfns: number[]): ProcessGenerator<void> {
    for (let at = 0; at < gfns.length; at += MAX_BATCH) {
      const batch = gfns.slice(at, at + MAX_BATCH);
      const k = batch.length;
      const buf = new Uint8Array(HDR + 8 * k + PAGE_SIZE * k);
      const dv = new DataView(buf.buffer);
      dv.setUint32(0, REC_PAGE_DATA, true);
      dv.setUint32(4, k, true);
      const base = HDR + 8 * k;
      batch.forEach((gfn, j) => {
        dv.setUint32(HDR + 8 * j, gfn % 2 ** 32, true);
        dv.setUint32(HDR + 8 * j + 4, Math.floor(gfn / 2 ** 32), true);
        const page = src.peekRam(gfn);
        const dst = buf.subarray(base + PAGE_SIZE * j, base + PAGE_SIZE * (j + 1));
        if (page !== null) dst.set(page);
        lastSent.set(gfn, dst);
      });
      ok('send', yield* sock.send(buf));
      streamBytes += buf.length;
    }
  }
  /** XEN_DOMCTL_SHADOW_OP_CLEAN: the pages whose contents changed since they were last sent. */
  const clean = (): number[] => {
    const out: number[] = [];
    for (let i = 0; i < nPages; i++) {
      const gfn = src.ramGfnAt(i);
      if (!samePage(src.peekRam(gfn), lastSent.get(gfn))) out.push(gfn);
    }
    return out;
  };

  const rounds: MigrationResult['rounds'] = [];
  let total = 0;
  let toSend = Array.from({ length: nPages }, (_, i) => src.ramGfnAt(i));
  for (let iter = 1; ; iter++) {
    const t0 = env.now;
    yield* send(toSend);
    total += toSend.length;
    rounds.push({ round: iter, pages: toSend.length, ns: env.now - t0 });
    if (iter >= maxIters || toSend.length < threshold || total > nPages * maxFactor) break;
    toSend = clean();
  }
  const liveRounds = rounds.length;

  // Stop-and-copy: the guest paused (descheduled at the end of the instant)…
  for (const v of oldDom.vcpus) from.hv.sched.pause(v);
  // vcpu_sleep_sync: wait until none is on a pCPU (a pCPU in the middle of a switch takes until its end).
  for (let i = 0; oldDom.vcpus.some((v) => v.pcpu !== null); i++) {
    if (i > 100_000) throw new MigrationError(`${name}: its vCPUs did not stop (model bug)`);
    yield env.timeout(i < 10 ? 0 : 10);
  }
  const pauseAt = env.now;
  phase('paused');
  // …its vifs here taken away, the old connection let go…
  let stuckGrants = 0;
  for (const n of g.nics) stuckGrants += yield* pvOf(n.attached).abandon(oldDom);
  // …the last dirty pages, and the end.
  const t0 = env.now;
  const last = clean();
  yield* send(last);
  total += last.length;
  rounds.push({ round: rounds.length + 1, pages: last.length, ns: env.now - t0 });
  const end = new Uint8Array(HDR);
  new DataView(end.buffer).setUint32(0, REC_END, true);
  ok('send', yield* sock.send(end));
  streamBytes += end.length;
  yield received;
  if (!received.ok) throw received.error;
  env.process(sock.close(), `migrate ${name}: close`);

  // The copy must be the guest's RAM, byte for byte — but for the FIFO event-channel pages,
  // which Xen writes through its own mapping without log-dirty (events for the paused guest
  // still link there) and the resuming kernel resets (evtchn_fifo_resume).
  const xenWritten = oldDom.evtchnFifo?.mappedGfns ?? new Set<number>();
  for (let i = 0; i < nPages; i++) {
    const gfn = src.ramGfnAt(i);
    if (!xenWritten.has(gfn) && !samePage(src.peekRam(gfn), fresh.peekRam(gfn)))
      throw new MigrationError(
        `${name}: page 0x${gfn.toString(16)} on ${to.name} differs from the guest's after the stop-and-copy (a write escaped log-dirty: model bug)`,
      );
  }

  // The source lets go: pending vCPU work kept to move, the domain destroyed.
  const pending: Work[][] = oldDom.vcpus.map((v) => v.work.drain());
  from.guests.delete(name);
  from.toolstack.destroyGuest(oldDom);

  // Resume on the target.
  newDom.adoptMemory(src);
  for (const n of g.nics) n.iface.replaceDevice(new ReconnectingDevice(n.iface.dev));
  // Linux's evtchn_fifo_resume reuses its control block and event array pages: given back to
  // the allocator here, the resuming kernel's FIFO set-up takes them again.
  g.side.kernel.evtchn.fifo?.releasePages();
  const booted = yield* bootGuestKernel(to.hv, newDom, profile, d.type === 'pv' ? rec.store : undefined, g.side.kernel.frames);
  g.side.rehome(newDom, booted.kernel, booted.xenbus);
  pending.forEach((ws, i) => {
    const v = newDom.vcpus[i]!;
    for (const w of ws) v.exec(w.remaining, w.ctx, w.priority).addCallback(() => w.succeed());
  });
  const resumedAt = env.now;
  phase('resumed');
  to.guests.set(name, g);

  // Its NICs again, on the target's Dom0, then the gratuitous ARP.
  for (const [i, n] of g.nics.entries()) {
    const attached = yield* to.paths.get(n.spec.path)!.attach(to, g.side, n.spec, n.devid);
    n.iface.replaceDevice(attached.device);
    g.nics[i] = { spec: n.spec, devid: n.devid, attached, iface: n.iface };
    n.iface.sendArp(ARP_REQUEST, MAC_BROADCAST, 0, n.iface.address);
  }
  const backAt = env.now;
  phase('reconnected');
  return {
    guest: name,
    from: from.name,
    to: to.name,
    oldDomid: oldDom.domid,
    newDomid: newDom.domid,
    startedAt,
    totalNs: backAt - startedAt,
    pauseNs: resumedAt - pauseAt,
    networkGapNs: backAt - pauseAt,
    rounds,
    liveRounds,
    pagesSent: total,
    finalPages: last.length,
    streamBytes,
    stuckGrants,
  };
}

/** The target Dom0's side (xc_domain_restore): records read and their pages written into the new domain's memory, until END. */
function* receive(
  env: Env,
  listener: { accept(): ProcessGenerator<TcpSocket | SocketError>; close(): void },
  mem: GuestMemory,
): ProcessGenerator<number> {
  const s = ok('accept', yield* listener.accept());
  listener.close();
  const buf = new Uint8Array(65536);
  let pos = 0;
  let len = 0;
  function* exact(n: number): ProcessGenerator<Uint8Array> {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      if (pos < len) {
        const k = Math.min(n - off, len - pos);
        out.set(buf.subarray(pos, pos + k), off);
        off += k;
        pos += k;
        continue;
      }
      const got = ok('recv', yield* s.recvInto(buf));
      if (got === 0) throw new MigrationError('migration stream: ended before its END record');
      pos = 0;
      len = got;
    }
    return out;
  }
  let pages = 0;
  for (;;) {
    const h = new DataView((yield* exact(HDR)).buffer);
    const type = h.getUint32(0, true);
    if (type === REC_END) break;
    const k = h.getUint32(4, true);
    if (type !== REC_PAGE_DATA || k < 1 || k > MAX_BATCH)
      throw new MigrationError(`migration stream: record type ${type} with ${k} pages (expected PAGE_DATA with 1…${MAX_BATCH}, or END)`);
    const pv = new DataView((yield* exact(8 * k)).buffer);
    for (let j = 0; j < k; j++) {
      const gfn = pv.getUint32(8 * j, true) + pv.getUint32(8 * j + 4, true) * 2 ** 32;
      const data = yield* exact(PAGE_SIZE);
      const page = mem.isRamGfn(gfn) ? mem.ramPage(gfn) : null;
      if (page === null) throw new MigrationError(`migration stream: pfn 0x${gfn.toString(16)} is not RAM of the new domain`);
      page.set(data);
      pages++;
    }
  }
  env.process(s.close(), 'migration receiver: close');
  return pages;
}
