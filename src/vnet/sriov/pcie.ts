import type { PcieCosts } from './costs.js';

export interface PcieStats {
  /** Bytes on the link (payload and TLP framing), towards the host (up) and towards the device (down). */
  upBytes: number;
  downBytes: number;
  /** Payload bytes the device read from and wrote to host memory. */
  dmaReadBytes: number;
  dmaWriteBytes: number;
  dmaReads: number;
  dmaWrites: number;
  /** MMIO writes from the CPU to the device (doorbells, interrupt mask registers). */
  mmioWrites: number;
}

/**
 * The NIC's PCIe link, shared by all its functions (PF and VFs): two directions, each
 * serializing the TLPs put on it at `pcie.bandwidth` plus `pcie.tlpOverhead` per TLP, in the
 * order they are issued (a reservation per direction: a transfer starts when the link is free).
 *
 * - A DMA read sends one request TLP upstream per Max_Read_Request_Size; the completions
 *   come back downstream `readLatency` after the requests, in TLPs of at most Max_Payload_Size.
 * - A DMA write (packet data, descriptor write-back, the MSI-X message) goes upstream in TLPs
 *   of at most Max_Payload_Size and is visible in memory `writeLatency` after its last byte.
 * - An MMIO write from the CPU (a doorbell) goes downstream as one TLP.
 * Times are fractional ns internally; callers round up when they wait.
 */
export class PcieLink {
  readonly stats: PcieStats = { upBytes: 0, downBytes: 0, dmaReadBytes: 0, dmaWriteBytes: 0, dmaReads: 0, dmaWrites: 0, mmioWrites: 0 };
  private upFree = 0;
  private downFree = 0;

  constructor(private readonly c: PcieCosts) {}

  private tlps(len: number, max: number): number {
    return Math.max(1, Math.ceil(len / max));
  }

  /** When the upstream direction has sent everything queued on it so far. */
  get upFreeAt(): number {
    return this.upFree;
  }

  /** A DMA read of `len` bytes issued at `now`; returns when its last byte is at the device. */
  read(now: number, len: number): number {
    const req = this.tlps(len, this.c.maxReadRequest) * this.c.tlpOverhead;
    const upStart = Math.max(now, this.upFree);
    this.upFree = upStart + req * this.c.nsPerByte;
    const cpl = len + this.tlps(len, this.c.maxPayload) * this.c.tlpOverhead;
    const downStart = Math.max(this.upFree + this.c.readLatency, this.downFree);
    this.downFree = downStart + cpl * this.c.nsPerByte;
    this.stats.upBytes += req;
    this.stats.downBytes += cpl;
    this.stats.dmaReads++;
    this.stats.dmaReadBytes += len;
    return this.downFree;
  }

  /** A DMA write of `len` bytes issued at `now`; returns when it is visible in host memory. */
  write(now: number, len: number): number {
    const bytes = len + this.tlps(len, this.c.maxPayload) * this.c.tlpOverhead;
    const start = Math.max(now, this.upFree);
    this.upFree = start + bytes * this.c.nsPerByte;
    this.stats.upBytes += bytes;
    this.stats.dmaWrites++;
    this.stats.dmaWriteBytes += len;
    return this.upFree + this.c.writeLatency;
  }

  /** A CPU's posted MMIO write of `len` bytes to the device at `now`; returns when the device has it. */
  mmioWrite(now: number, len: number): number {
    const bytes = len + this.c.tlpOverhead;
    const start = Math.max(now, this.downFree);
    this.downFree = start + bytes * this.c.nsPerByte;
    this.stats.downBytes += bytes;
    this.stats.mmioWrites++;
    return this.downFree + this.c.writeLatency;
  }
}
