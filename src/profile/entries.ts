import type { Dimension } from './units.js';

/**
 * Every cost and timing parameter the model may read, in one place: its dimension (which
 * fixes the units a profile may use) and what it means. A profile must give each of these a
 * value, a unit and a source; a name not listed here is rejected as a typo. Later
 * capabilities add their entries here.
 */
export const ENTRIES = {
  // ---- Xen credit scheduler (xen/common/sched_credit.c, credit1) ----
  'xen.sched.tslice': { dim: 'time', doc: 'Credit scheduler time slice (sched_credit_tslice_ms)' },
  'xen.sched.tick': { dim: 'time', doc: 'Per-pCPU accounting tick: credits are burned and BOOST is dropped' },
  'xen.sched.ratelimit': { dim: 'time', doc: 'Minimum run time before a running vCPU can be preempted (sched_ratelimit_us); 0 disables' },
  'xen.sched.minTimer': { dim: 'time', doc: 'Shortest rate-limit remainder credit1 grants (CSCHED_MIN_TIMER, Xen 4.8+)' },
  'xen.sched.creditsPerMs': { dim: 'count', doc: 'Credits a running vCPU burns per millisecond (CSCHED_CREDITS_PER_MSEC)' },
  'xen.sched.vcpuSwitch': { dim: 'time', doc: 'Xen switching a pCPU from one vCPU to another (state save/restore, VMCS and EPT switch)' },
  'xen.sched.schedule': {
    dim: 'time',
    doc: 'One scheduling decision in Xen on the pCPU: schedule() in common/schedule.c with csched_schedule (burn_credits, rate-limit check, run-queue insert/pick, load balance), the slice timer set, the runstate update',
  },
  'xen.sched.idleSwitch': {
    dim: 'time',
    doc: 'context_switch to or from the idle vCPU: lazy (no register state saved or loaded), the runstate area, set_current, the idle loop entered or left',
  },
  'xen.pcpu.idleWake': { dim: 'time', doc: 'An idle pCPU leaving its idle state to run a tickled vCPU (C-state exit latency)' },

  // ---- guest network stack (src/net; Linux 3.x guest; same costs whatever device is below) ----
  'net.syscall': { dim: 'time', doc: 'A socket system call: entry/exit, fd lookup, socket lock (per send/recv/connect/accept/close call)' },
  'net.copy': { dim: 'perByte', doc: 'Copying payload between user memory and socket buffers (copy_from_user/copy_to_user)' },
  'net.csum': { dim: 'perByte', doc: 'Computing or verifying an Internet checksum in software (csum_partial), when the device does not offload it' },
  'net.tx.packet': { dim: 'time', doc: 'Transmit path per packet: TCP/UDP/ICMP output, IPv4 output, neighbour output, qdisc and driver hand-off' },
  'net.rx.packet': { dim: 'time', doc: 'Receive path per packet in softirq: netif_receive_skb, IPv4 input, TCP/UDP/ICMP input and socket queueing' },
  'net.tx.gsoSegment': {
    dim: 'time',
    doc: 'Software GSO: building one MSS segment from a super-packet when the device has no TSO (skb_segment, header copy and fix-up)',
  },
  'net.irq': {
    dim: 'time',
    doc: "A NIC interrupt in the guest kernel: handler entry/exit, acknowledging and scheduling NAPI (native part only; virtualization exits are the I/O path's own costs)",
  },
  'net.wakeup': { dim: 'time', doc: 'Waking a task blocked in a socket call and switching to it (try_to_wake_up plus a context switch)' },
  'net.dev.txQueueLen': { dim: 'count', doc: 'Packets a device transmit queue (qdisc) holds before dropping (txqueuelen)' },
  'net.dev.rxRing': {
    dim: 'count',
    doc: 'Receive descriptors of a NIC ring (the direct link): frames arriving when all are full are dropped by the device',
  },
  'net.dev.maxBacklog': {
    dim: 'count',
    doc: 'Frames the per-CPU backlog of netif_rx (devices without NAPI: loopback) holds before dropping (netdev_max_backlog)',
  },
  'net.napi.weight': { dim: 'count', doc: "Frames one NAPI poll of a device (or of the backlog) may take before the next device's turn" },
  'net.softirq.budget': { dim: 'count', doc: 'Frames one run of net_rx_action may take over all devices (netdev_budget)' },
  'net.softirq.netRxTime': { dim: 'time', doc: 'Longest run of net_rx_action before it stops and re-raises itself' },
  'net.softirq.maxTime': { dim: 'time', doc: 'Time __do_softirq restarts pending softirqs for before waking ksoftirqd (MAX_SOFTIRQ_TIME)' },
  'net.softirq.maxRestart': { dim: 'count', doc: 'Passes __do_softirq makes over pending softirqs before waking ksoftirqd (MAX_SOFTIRQ_RESTART)' },
  'net.arp.retransTime': { dim: 'time', doc: 'Interval between ARP requests for an unresolved neighbour (retrans_time)' },
  'net.arp.maxProbes': { dim: 'count', doc: 'ARP requests sent before a neighbour is declared unreachable (mcast_solicit)' },
  'net.arp.reachableTime': { dim: 'time', doc: 'How long a confirmed neighbour entry stays REACHABLE before it is STALE (base_reachable_time)' },
  'net.arp.unresQueueBytes': { dim: 'bytes', doc: 'Bytes queued per unresolved neighbour; more are dropped (unres_qlen_bytes)' },
  'net.ip.fragTimeout': { dim: 'time', doc: 'Time an incomplete IPv4 datagram is kept for reassembly (ipfrag_time)' },
  'net.ip.fragHighThresh': {
    dim: 'bytes',
    doc: 'Memory for IPv4 fragments awaiting reassembly; past it the oldest incomplete datagrams are evicted (ipfrag_high_thresh)',
  },
  'net.ip.fragLowThresh': { dim: 'bytes', doc: 'Memory for IPv4 fragments that eviction brings the reassembly queues down to (ipfrag_low_thresh)' },
  'net.tcp.rtoMin': { dim: 'time', doc: 'Minimum retransmission timeout (TCP_RTO_MIN)' },
  'net.tcp.rtoMax': { dim: 'time', doc: 'Maximum retransmission timeout, backoff ceiling (TCP_RTO_MAX)' },
  'net.tcp.rtoInit': { dim: 'time', doc: 'Retransmission timeout before any RTT sample (TCP_TIMEOUT_INIT)' },
  'net.tcp.delackMin': { dim: 'time', doc: 'Minimum delayed-ACK timeout, also the initial ACK timeout estimate (TCP_DELACK_MIN, TCP_ATO_MIN)' },
  'net.tcp.delackMax': { dim: 'time', doc: 'Maximum delayed-ACK timeout in interactive (pingpong) mode (TCP_DELACK_MAX)' },
  'net.tcp.atoMaxBulk': { dim: 'time', doc: 'Ceiling of the delayed-ACK timeout outside interactive mode (max_ato = HZ/2 in tcp_send_delayed_ack)' },
  'net.tcp.maxQuickAcks': { dim: 'count', doc: 'Most segments acknowledged at once in quick-ack mode (TCP_MAX_QUICKACKS)' },
  'net.tcp.timeWait': { dim: 'time', doc: 'TIME_WAIT duration, 2*MSL (TCP_TIMEWAIT_LEN)' },
  'net.tcp.finTimeout': { dim: 'time', doc: 'How long an orphaned connection may stay in FIN_WAIT_2 (tcp_fin_timeout)' },
  'net.tcp.synRetries': { dim: 'count', doc: 'SYN retransmissions before connect fails (tcp_syn_retries)' },
  'net.tcp.retries2': { dim: 'count', doc: 'Retransmissions of a data segment before the connection is aborted (tcp_retries2)' },
  'net.tcp.initCwnd': { dim: 'count', doc: 'Initial congestion window, segments (TCP_INIT_CWND)' },
  'net.tcp.reordering': { dim: 'count', doc: 'Duplicate ACKs that trigger fast retransmit (tcp_reordering)' },
  'net.tcp.rmemDefault': { dim: 'bytes', doc: 'Initial TCP receive buffer (tcp_rmem[1])' },
  'net.tcp.rmemMax': { dim: 'bytes', doc: 'Largest TCP receive buffer autotuning may reach (tcp_rmem[2])' },
  'net.tcp.wmemDefault': { dim: 'bytes', doc: 'Initial TCP send buffer (tcp_wmem[1])' },
  'net.tcp.wmemMax': { dim: 'bytes', doc: 'Largest TCP send buffer autotuning may reach (tcp_wmem[2])' },
  'net.tcp.limitOutputBytes': { dim: 'bytes', doc: 'TCP Small Queues: bytes one socket may have in qdisc and device (tcp_limit_output_bytes)' },
  'net.tcp.backlog': { dim: 'count', doc: 'Largest listen backlog (somaxconn)' },
  'net.udp.rmemDefault': { dim: 'bytes', doc: 'UDP socket receive buffer (rmem_default)' },
  'net.udp.wmemDefault': { dim: 'bytes', doc: 'UDP socket send buffer (wmem_default)' },
  // ---- Linux bridge (src/net/bridge; Dom0's kernel, net/bridge of Linux 4.4) ----
  'net.bridge.frame': {
    dim: 'time',
    doc: "A frame taken from a bridge port in the receive softirq: __netif_receive_skb up to the rx_handler, br_handle_frame and br_handle_frame_finish (FDB update and lookup), br_forward or br_pass_frame_up, and the hand-off to one egress port's qdisc (the port's driver work is its own)",
  },
  'net.bridge.floodCopy': {
    dim: 'time',
    doc: 'Each further copy of a frame the bridge sends to more than one place (flooding, broadcast also passed up): skb_clone and dev_queue_xmit to one more port (deliver_clone)',
  },
  'net.bridge.xmit': {
    dim: 'time',
    doc: "br_dev_xmit: a frame the host sends on the bridge device, FDB lookup and hand-off to the egress port's qdisc (the stack's output path is net.tx.packet)",
  },
  'net.bridge.ageingTime': {
    dim: 'time',
    doc: 'Ageing time of learned forwarding-database entries (ageing_time): an entry not refreshed by a frame from its MAC for this long is forgotten',
  },
  // ---- physical NIC in Dom0 and the wire between hosts (src/vnet/phys; an 82599-class 10 GbE port, Linux ixgbe) ----
  'phys.nic.bandwidth': { dim: 'perByte', doc: 'Line rate of the physical NIC port and the cable between two hosts (one direction)' },
  'phys.nic.frameOverhead': {
    dim: 'bytes',
    doc: 'Bytes a frame occupies on the wire besides itself: preamble and start delimiter, FCS, inter-frame gap',
  },
  'phys.nic.txRing': { dim: 'count', doc: 'TX descriptors of the NIC ring (ixgbe tx_ring->count): packets accepted and not yet on the wire' },
  'phys.nic.rxRing': {
    dim: 'count',
    doc: 'RX descriptors of the NIC ring (ixgbe rx_ring->count): frames arriving when all are full are dropped (rx_missed_errors)',
  },
  'phys.nic.latency': {
    dim: 'time',
    doc: "One-way latency from the last bit leaving one NIC to the frame in the other NIC's RX buffer: both MAC/PHY pipelines, the cable, the RX DMA",
  },
  'phys.nic.irq': { dim: 'time', doc: "The NIC's interrupt in Dom0: the MSI-X handler (ixgbe_msix_clean_rings) scheduling NAPI, entry and exit" },
  'phys.nic.txPacket': {
    dim: 'time',
    doc: "The driver's transmit of one packet on Dom0's CPU (ixgbe_xmit_frame_ring: descriptor set-up, DMA mapping, the tail write) and its clean-up on completion (ixgbe_clean_tx_irq)",
  },
  'phys.nic.rxPacket': {
    dim: 'time',
    doc: "The driver's receive of one frame on Dom0's CPU in its NAPI poll (ixgbe_clean_rx_irq: descriptor check, DMA unmap, skb build, buffer refill)",
  },
  // ---- PCIe, the IOMMU and Xen's physical interrupts (src/xen/iommu.ts, passthrough.ts; src/vnet/sriov) ----
  'pcie.bandwidth': {
    dim: 'perByte',
    doc: "Data rate of the NIC's PCIe link, each direction (lanes × transfer rate after line coding); TLP framing is pcie.tlpOverhead",
  },
  'pcie.tlpOverhead': {
    dim: 'bytes',
    doc: 'Bytes a transaction-layer packet carries besides its payload on the link: framing, sequence number, header (64-bit address), LCRC',
  },
  'pcie.maxPayload': {
    dim: 'bytes',
    doc: 'Largest payload of one TLP (Max_Payload_Size): a DMA write, or a read completion, is cut into TLPs of at most this',
  },
  'pcie.maxReadRequest': {
    dim: 'bytes',
    doc: 'Largest read one request TLP may ask for (Max_Read_Request_Size): a DMA read sends one request upstream per this many bytes',
  },
  'pcie.maxOutstandingReads': {
    dim: 'count',
    doc: 'Read requests a NIC DMA engine keeps outstanding at once (its read tags): with pcie.maxReadRequest, how much data a queue may have in flight',
  },
  'pcie.readLatency': {
    dim: 'time',
    doc: "A DMA read's round trip besides serialization: the request reaching the root complex, the memory read, the first completion back at the device",
  },
  'pcie.writeLatency': { dim: 'time', doc: 'A posted DMA write reaching host memory (visible to the CPU) after its last byte left the device' },
  'iommu.lookup': { dim: 'time', doc: 'An IOMMU translation of one page of a DMA found in the IOTLB' },
  'iommu.iotlbMiss': { dim: 'time', doc: "An IOMMU translation not in the IOTLB: the walk of the domain's VT-d page tables in memory" },
  'iommu.iotlbEntries': { dim: 'count', doc: 'Page translations the IOTLB holds (least recently used evicted)' },
  'xen.irq.passthrough': {
    dim: 'time',
    doc: "Xen taking a passed-through device's MSI on a pCPU: interrupt entry, do_IRQ and the guest irq's handler (ack, mask), HVM_DPCI_SOFTIRQ, hvm_dirq_assist and vmsi_deliver_pirq up to vlapic_set_irq and the vCPU kick (the injection and any exit are xen.hvm.*)",
  },
  // ---- SR-IOV NIC and the guest's VF driver (src/vnet/sriov; an 82599 with VFs, Linux 3.18 ixgbevf) ----
  'sriov.veb.frame': {
    dim: 'time',
    doc: "The NIC's packet pipeline for one frame through its embedded switch (VEB): the pool's MAC/VLAN filters, the forwarding decision, the move from the TX packet buffer to the destination's RX packet buffer (or the wire port); the DMAs are pcie.*",
  },
  'sriov.nic.rxBuffer': {
    dim: 'bytes',
    doc: "The NIC's RX packet buffer, shared by all pools: frames switched to a VF queue wait there for posted descriptors; a frame that finds it full is dropped",
  },
  'sriov.nic.descriptor': {
    dim: 'time',
    doc: "The NIC's DMA engine handling one descriptor it fetched (TX or RX): parsing it, scheduling its buffer DMA, the write-back it prepares; the DMA itself is pcie.*",
  },
  'sriov.vf.regWrite': {
    dim: 'time',
    doc: "A guest's uncached write to a VF register in the BAR mapped into it (tail doorbell, VTEIMS/VTEICS): a posted MMIO write, no VM exit",
  },
  'sriov.pf.mailbox': {
    dim: 'time',
    doc: "One VF-to-PF mailbox request handled by the PF driver in Dom0 (ixgbe_rcv_msg_from_vf: reset, set MAC, set multicast): the PF's interrupt, the message and the ack; set-up only",
  },
  'sriov.ixgbevf.xmitFrame': {
    dim: 'time',
    doc: "ixgbevf_xmit_frame per packet on the guest vCPU: ring space check, the context descriptor (checksum/TSO), one data descriptor per fragment with its DMA mapping, the tail write's preparation (the write is sriov.vf.regWrite)",
  },
  'sriov.ixgbevf.cleanTx': { dim: 'time', doc: 'ixgbevf_clean_tx_irq per completed descriptor: DD checked, DMA unmapped, the skb freed on its last' },
  'sriov.ixgbevf.cleanRx': {
    dim: 'time',
    doc: "ixgbevf_clean_rx_irq per frame: DD and errors checked, the checksum status (ixgbevf_rx_checksum), the skb built, the buffer re-posted (ixgbevf_alloc_rx_buffers' share; the tail write is sriov.vf.regWrite)",
  },
  // ---- PV netfront/netback (src/vnet/pv; Linux 3.18 drivers/net/xen-netfront.c and xen-netback/) ----
  'pv.netfront.txPacket': {
    dim: 'time',
    doc: 'xennet_start_xmit per packet on the guest vCPU, besides its slots: queue lock, slot count (xennet_count_skb_frag_slots), checksum and GSO flags, RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, the xennet_tx_buf_gc call',
  },
  'pv.netfront.txSlot': {
    dim: 'time',
    doc: 'One TX request slot written by netfront: a free id and grant ref, gnttab_grant_foreign_access_ref (read-only) of the page, the request in the shared ring',
  },
  'pv.netfront.txResponse': {
    dim: 'time',
    doc: 'One TX response taken by xennet_tx_buf_gc: gnttab_query/end_foreign_access_ref, release of the ref and id, the skb reference dropped',
  },
  'pv.netfront.rxPacket': {
    dim: 'time',
    doc: 'xennet_poll per packet besides its slots: skb set-up, pulling the headers (at most RX_COPY_THRESHOLD = 256 bytes) into the linear area, checksum_setup and GSO from the extra, handing it to the stack (napi_gro_receive)',
  },
  'pv.netfront.rxSlot': {
    dim: 'time',
    doc: 'One RX slot: the response checked and its grant ended (gnttab_end_foreign_access_ref), then the refill of the slot by xennet_alloc_rx_buffers (a page, a grant with write access, the request)',
  },
  'pv.netback.txPacket': {
    dim: 'time',
    doc: 'xenvif_tx_action per packet on Dom0, besides its slots and the grant-copy hypercall: request and extra checks (xenvif_tx_build_gops, xenvif_count_requests), skb allocation, xenvif_tx_check_gop, checksum_setup, the response and the hand-off up (netif_receive_skb to the bridge port)',
  },
  'pv.netback.txSlot': {
    dim: 'time',
    doc: 'One TX slot in netback: copying the request out of the ring, the pending-ring entry, the GNTTABOP_copy op set up, and its response',
  },
  'pv.netback.rxPacket': {
    dim: 'time',
    doc: 'xenvif_start_xmit plus xenvif_rx_action per packet, besides its slots and the grant-copy hypercall: the rx_queue, xenvif_rx_ring_slots_available, the meta, the flags and GSO extra of the first response, the skb freed',
  },
  'pv.netback.rxSlot': {
    dim: 'time',
    doc: 'One RX slot filled by netback: a posted request copied out of the ring (xenvif_gop_frag_copy / get_next_rx_buffer), the GNTTABOP_copy op set up, its response (make_rx_response)',
  },
  // ---- HV²M: the guest-to-guest push channel (src/vnet/hv2m) ----
  'hv2m.tx.packet': {
    dim: 'time',
    doc: "The sending guest per diverted frame, besides its slots and the grant-copy hypercall: the post-routing hook, the per-peer queue, xenvif_rx_action's per-packet work done by the guest itself (flags and GSO extra of the first response), the skb freed",
  },
  'hv2m.tx.slot': {
    dim: 'time',
    doc: "The sending guest per receiver buffer filled: the posted {id, gref} copied out of the peer's ring, the GNTTABOP_copy op set up, the response written",
  },
  'hv2m.rx.packet': {
    dim: 'time',
    doc: 'The receiving guest per frame taken off its control ring, besides its slots: the completion validated, the skb built around the buffers, checksum and GSO from the flags and extra, handed to the stack',
  },
  'hv2m.rx.slot': {
    dim: 'time',
    doc: 'The receiving guest per buffer completed: id and length checked, the write grant ended, a fresh page posted and granted in its place',
  },
  'hv2m.fenceRetry': {
    dim: 'time',
    doc: 'How long a sender whose peer has not yet passed the switch fence waits before sending the fence again over the ordinary NIC (a fence can be lost like any frame)',
  },
  'hv2m.watchdog': {
    dim: 'time',
    doc: 'A channel with frames waiting and no progress (no buffer posted, no state change) for this long is taken as dead: the sender stops diverting, revokes and closes, and falls back',
  },
  // ---- live migration (src/host/migration.ts; libxc's save loop) ----
  'migration.maxIterations': { dim: 'count', doc: 'Pre-copy rounds at most before the stop-and-copy round (xc_domain_save max_iters)' },
  'migration.dirtyThreshold': { dim: 'count', doc: 'Fewer pages dirtied in a round than this ends pre-copy: the rest is sent with the guest paused' },
  'migration.maxFactor': {
    dim: 'count',
    doc: "Pre-copy stops once it has sent more than this many times the guest's memory (xc_domain_save max_factor)",
  },
  // ---- emulated path: the guest's e1000 driver, qemu-dm's e1000 in Dom0, the tap (src/vnet/emulated) ----
  'emulated.qemu.wakeup': {
    dim: 'time',
    doc: 'qemu-dm woken for an ioreq: the Dom0 evtchn device marks the port, qemu returns from its main-loop poll, reads the port from /dev/xen/evtchn and finds the slot (cpu_handle_ioreq)',
  },
  'emulated.qemu.mmioAccess': {
    dim: 'time',
    doc: 'qemu dispatching one MMIO ioreq to the e1000 (handle_ioreq, address_space_rw, the memory-region dispatch, e1000_mmio_read/write and the register handler), besides what the access triggers',
  },
  'emulated.qemu.configAccess': {
    dim: 'time',
    doc: 'qemu dispatching one PCI config-space ioreq (cpu_ioreq_config → pci_host_config_read/write_common → pci_default_read/write_config, e1000_write_config) or port ioreq (cpu_ioreq_pio, the host bridge or an I/O BAR), besides any dm_op the write causes',
  },
  'emulated.qemu.txDesc': {
    dim: 'time',
    doc: 'start_xmit per TX descriptor: the descriptor read through the map cache, process_tx_desc, txdesc_writeback',
  },
  'emulated.qemu.rxDesc': { dim: 'time', doc: 'e1000_receive_iov per RX descriptor: reading it, the buffer write set-up, the descriptor write-back' },
  'emulated.qemu.frame': {
    dim: 'time',
    doc: 'qemu per frame besides descriptors and bytes: the net-layer hand-off (qemu_send_packet / qemu_deliver_packet), the receive filter, statistics',
  },
  'emulated.qemu.dmaCopy': {
    dim: 'perByte',
    doc: 'qemu copying frame bytes between guest memory (through its map cache) and its own buffers (pci_dma_read/write, memcpy)',
  },
  'emulated.qemu.irqOp': {
    dim: 'time',
    doc: "qemu raising or lowering the NIC's interrupt line: pci_set_irq down to xen_set_pci_intx_level (the dm_op ioctl through privcmd), besides the hypercall itself",
  },
  'emulated.qemu.mapcacheMiss': {
    dim: 'time',
    doc: "A map-cache miss in qemu (xen_map_cache): a 1 MiB bucket mapped with xenforeignmemory_map (mmap and the privcmd ioctl set-up), besides Xen's part of the foreign map",
  },
  'emulated.tap.write': {
    dim: 'time',
    doc: 'qemu writing a frame to its tap fd (tap_write_packet → tun_get_user: the write syscall, skb allocation, netif_rx_ni to the bridge)',
  },
  'emulated.tap.read': {
    dim: 'time',
    doc: 'qemu reading a frame from its tap fd (tap_send → tun_do_read: the read syscall and skb freeing), besides the copy',
  },
  'emulated.e1000.xmitFrame': {
    dim: 'time',
    doc: 'Linux e1000_xmit_frame per packet besides its MMIO: e1000_tx_map (DMA mapping), e1000_tx_queue writing the descriptors, the checksum/context descriptor set-up',
  },
  'emulated.e1000.cleanTx': { dim: 'time', doc: 'Linux e1000_clean_tx_irq per reclaimed descriptor: reading DD, unmapping, freeing the skb' },
  'emulated.e1000.cleanRx': {
    dim: 'time',
    doc: 'Linux e1000_clean_rx_irq per received frame besides the stack: reading the descriptor, unmapping, skb set-up, e1000_rx_checksum, the refill (e1000_alloc_rx_buffers) of its slot',
  },
  // ---- hypervisor: exits, hypercalls, grant tables, event channels, interrupts, ioreq ----
  'xen.hvm.exit.vmcall': {
    dim: 'time',
    doc: "HVM VM exit by VMCALL plus Xen's exit path to the hypercall handler (the exit half of a hypercall round trip)",
  },
  'xen.hvm.exit.io': { dim: 'time', doc: "HVM VM exit by an I/O-port instruction plus Xen's exit path to its handler" },
  'xen.hvm.exit.ept': { dim: 'time', doc: "HVM VM exit by an EPT violation (MMIO to an emulated device) plus Xen's exit path" },
  'xen.hvm.exit.hlt': {
    dim: 'time',
    doc: 'HVM VM exit by HLT when the guest idles: vmx_vmexit_handler, hvm_hlt and SCHEDOP_block (vcpu_block: blocked flag, event re-check, schedule softirq raised)',
  },
  'xen.hvm.exit.other': { dim: 'time', doc: "HVM VM exit by an external interrupt (IPI) or an interrupt window, plus Xen's exit path" },
  'xen.hvm.vmentry': { dim: 'time', doc: "Xen's return path to an HVM guest and VMRESUME" },
  'xen.hvm.eoi': { dim: 'time', doc: 'Guest EOI of an injected LAPIC interrupt: exit, vLAPIC emulation, entry (no APICv)' },
  'xen.hvm.injectIrq': { dim: 'time', doc: 'Xen choosing and injecting a pending virtual interrupt on VM entry (vmx_intr_assist)' },
  'xen.hvm.mmioDecode': { dim: 'time', doc: 'Xen fetching and decoding the guest instruction of an MMIO exit (x86 emulator), before forwarding it' },
  'xen.hvm.pioDecode': { dim: 'time', doc: 'Xen decoding an I/O-port exit from its exit qualification, before forwarding it' },
  'xen.pv.trap': { dim: 'time', doc: 'PV guest trap into Xen and return (hypercall syscall, or an interrupt taken in guest mode)' },
  'xen.pv.eventCallback': { dim: 'time', doc: 'Xen entering a PV guest at its event callback (bounce frame on the return to guest)' },
  'xen.ipi.latency': { dim: 'time', doc: 'Physical IPI from the sending pCPU until the target pCPU takes it (wire time, no CPU charged)' },
  'xen.ipi.callFunction': {
    dim: 'time',
    doc: 'A pCPU taking a Xen call-function IPI (smp_call_function_interrupt): interrupt entry and exit, the APIC ack, reading call_data and clearing its bit in the selected mask, besides the function it calls',
  },
  'xen.hypercall.simpleOp': { dim: 'time', doc: 'Handler of a small hypercall sub-op (bind, close, status, unmask, set_param, setup_table...)' },
  'xen.evtchn.send': { dim: 'time', doc: 'EVTCHNOP_send handler: 2-level set_pending on the peer and the kick of its vCPU' },
  'xen.evtchn.sendFifo': {
    dim: 'time',
    doc: 'EVTCHNOP_send handler when the receiving domain uses the FIFO ABI: evtchn_fifo_set_pending (event word cmpxchgs, the queue lock, linking the tail, HEAD and READY in the control block) and the kick of its vCPU',
  },
  'xen.gnttab.copyOp': {
    dim: 'time',
    doc: 'One GNTTABOP_copy op besides its bytes and its claims: reading the op, the domain checks, writing its status',
  },
  'xen.gnttab.copyClaim': {
    dim: 'time',
    doc: 'GNTTABOP_copy claiming one side (acquire the grant with its cmpxchg, or get the own frame; map_domain_page); once per op up to Xen 4.5, once per run of ops on the same page from 4.6',
  },
  'xen.gnttab.copyPerByte': { dim: 'perByte', doc: "Bytes moved by a GNTTABOP_copy op (Xen's memcpy)" },
  'xen.gnttab.mapOp': { dim: 'time', doc: 'One GNTTABOP_map_grant_ref op: maptrack, grant pin, p2m/page-table update' },
  'xen.gnttab.unmapOp': { dim: 'time', doc: 'One GNTTABOP_unmap_grant_ref op: p2m/page-table update, unpin' },
  'xen.gnttab.tlbFlush': {
    dim: 'time',
    doc: "TLB/EPT invalidation for one unmapped grant: one INVEPT of the mapper's EPT after its p2m removal on each pCPU that does it (HVM caller; other pCPUs holding its vCPUs are reached by IPI, ept-sync.ts), or the per-page share of the batch flush (PV caller)",
  },
  'xen.ioreq.complete': { dim: 'time', doc: 'Xen taking an ioreq response and completing the emulated instruction (hvm_io_assist)' },
  // ---- shmem: the XenLoop-style shared-memory baseline (src/vnet/shmem) ----
  'shmem.tx.packet': {
    dim: 'time',
    doc: 'The sending guest per diverted frame, besides the copy itself: the post-routing hook, the per-peer queue, the FIFO space check against the consumer index, the record header, the producer index published, the skb freed',
  },
  'shmem.rx.packet': {
    dim: 'time',
    doc: 'The receiving guest per record taken out of its FIFO, besides the copy itself: the producer index and header read and checked, a fresh skb allocated, checksum and GSO from the record flags, the consumer index published, handed to the stack',
  },
  'guest.memcpy': {
    dim: 'perByte',
    doc: 'A guest kernel copying bytes between its own buffers and a page it owns or mapped (memcpy on its vCPU): the shmem sender into the FIFO, the receiver out of it',
  },
  'guest.xen.upcall': { dim: 'time', doc: 'Guest kernel event-channel upcall: interrupt entry/exit and the 2-level scan (xen_evtchn_do_upcall)' },
  'guest.gnttab.eagainRetryStep': {
    dim: 'time',
    doc: 'Sleep unit of a guest kernel retrying a grant op that returned GNTST_eagain: it sleeps 1, 2, 3… units between tries (gnttab_retry_eagain_gop)',
  },
  'guest.xen.upcallPort': { dim: 'time', doc: 'Guest kernel dispatch of one pending port to its handler (evtchn_to_irq, handle_irq, clear pending)' },
  'guest.xen.fifoUpcall': {
    dim: 'time',
    doc: 'Guest kernel event-channel upcall on the FIFO ABI: interrupt entry/exit and evtchn_fifo_handle_events taking the control block READY word (xchg) and finding its first queue, instead of the 2-level scan',
  },
  'guest.xen.fifoConsume': {
    dim: 'time',
    doc: 'Guest kernel consume_one_event on the FIFO ABI, per event taken off a queue: the HEAD read, clear_linked (a cmpxchg on the event word) and the PENDING/MASKED test, besides its dispatch (guest.xen.upcallPort)',
  },
  // ---- XenStore in the model: xenstored serving guest rings, guests' xenbus ----
  'xen.xenstore.daemonWakeup': {
    dim: 'time',
    doc: 'Dom0 kernel waking the xenstored process for an event on a domain ring (/dev/xen/evtchn read, select returning)',
  },
  'xen.xenstore.daemonRequest': { dim: 'time', doc: 'xenstored handling one request: parse, path and permission checks, node lookup, reply' },
  'xen.xenstore.daemonModify': {
    dim: 'time',
    doc: 'Extra for a request that changes the store (WRITE, MKDIR, RM, SET_PERMS, a committing TRANSACTION_END): the database write',
  },
  'guest.xenbus.message': {
    dim: 'time',
    doc: "A guest kernel's xenbus sending or receiving one XenStore message through its ring (xs_talkv / xenbus_thread)",
  },
  // ---- A Linux kernel's own scheduling of its threads (Dom0's kernel threads: netback, qemu's helpers) ----
  'guest.sched.contextSwitch': {
    dim: 'time',
    doc: 'A Linux kernel switching its CPU from one thread to another (context_switch: registers, stack, address space)',
  },
  'guest.sched.wakeup': {
    dim: 'time',
    doc: 'A Linux kernel waking a sleeping thread and getting it scheduled (try_to_wake_up, enqueue, the switch-in path)',
  },
} as const satisfies Record<string, { dim: Dimension; doc: string }>;

export type EntryName = keyof typeof ENTRIES;
type EntriesOf<D extends Dimension> = { [K in EntryName]: (typeof ENTRIES)[K]['dim'] extends D ? K : never }[EntryName];
export type TimeEntry = EntriesOf<'time'>;
export type PerByteEntry = EntriesOf<'perByte'>;
export type CountEntry = EntriesOf<'count'>;
export type BytesEntry = EntriesOf<'bytes'>;
export type RatioEntry = EntriesOf<'ratio'>;
