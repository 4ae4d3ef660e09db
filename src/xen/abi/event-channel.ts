/**
 * Event channels (xen/include/public/event_channel.h) and the 2-level ABI's shared-info
 * layout (public/xen.h, x86-64). Names are Xen's own. No behaviour here.
 */

/** EVTCHNOP_* commands of event_channel_op (hypercall 32). */
export const EVTCHNOP_bind_interdomain = 0;
export const EVTCHNOP_bind_virq = 1;
export const EVTCHNOP_bind_pirq = 2;
export const EVTCHNOP_close = 3;
export const EVTCHNOP_send = 4;
export const EVTCHNOP_status = 5;
export const EVTCHNOP_alloc_unbound = 6;
export const EVTCHNOP_bind_ipi = 7;
export const EVTCHNOP_bind_vcpu = 8;
export const EVTCHNOP_unmask = 9;

/** EVTCHNSTAT_* values returned by EVTCHNOP_status. */
export const EVTCHNSTAT_closed = 0;
export const EVTCHNSTAT_unbound = 1;
export const EVTCHNSTAT_interdomain = 2;
export const EVTCHNSTAT_pirq = 3;
export const EVTCHNSTAT_virq = 4;
export const EVTCHNSTAT_ipi = 5;

/** Virtual IRQs (VIRQ_*). TIMER, DEBUG, XENOPROF and XENPMU are per-vCPU; the rest global. */
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const VIRQ_DOM_EXC = 3;
export const VIRQ_TBUF = 4;
export const VIRQ_DEBUGGER = 6;
export const VIRQ_XENOPROF = 7;
export const VIRQ_CON_RING = 8;
export const VIRQ_PCPU_STATE = 9;
export const VIRQ_MEM_EVENT = 10;
export const VIRQ_ARGO = 11;
export const VIRQ_ENOMEM = 12;
export const VIRQ_XENPMU = 13;
export const NR_VIRQS = 24;

/** 2-level ABI: 64 words of 64 bits = 4096 ports for a 64-bit guest. */
export const EVTCHN_2L_NR_CHANNELS = 64 * 64;
export const BITS_PER_EVTCHN_WORD = 64;

/** struct shared_info (x86-64): vcpu_info[XEN_LEGACY_MAX_VCPUS] then the 2-level bitmaps. */
export const XEN_LEGACY_MAX_VCPUS = 32;
export const SHARED_INFO = { vcpu_info: 0, evtchn_pending: 2048, evtchn_mask: 2560, wc_version: 3072 } as const;
/** struct vcpu_info, 64 bytes. */
export const VCPU_INFO_SIZE = 64;
export const VCPU_INFO = { evtchn_upcall_pending: 0, evtchn_upcall_mask: 1, evtchn_pending_sel: 8, arch: 16, time: 32 } as const;

/** Argument layouts (bytes), for reference: the model passes these as typed records. */
export const EVTCHN_ALLOC_UNBOUND = { size: 8, dom: 0, remote_dom: 2, port: 4 } as const;
export const EVTCHN_BIND_INTERDOMAIN = { size: 12, remote_dom: 0, remote_port: 4, local_port: 8 } as const;
export const EVTCHN_BIND_VIRQ = { size: 12, virq: 0, vcpu: 4, port: 8 } as const;
export const EVTCHN_STATUS = { size: 24, dom: 0, port: 4, status: 8, vcpu: 12, u: 16 } as const;

// ---- FIFO-based event channel ABI (public/event_channel.h, Xen 4.4+) ----
export const EVTCHNOP_init_control = 11;
export const EVTCHNOP_expand_array = 12;
export const EVTCHNOP_set_priority = 13;
/** Priorities: 0 is the highest; a new port gets the default. */
export const EVTCHN_FIFO_PRIORITY_MAX = 0;
export const EVTCHN_FIFO_PRIORITY_DEFAULT = 7;
export const EVTCHN_FIFO_PRIORITY_MIN = 15;
export const EVTCHN_FIFO_MAX_QUEUES = EVTCHN_FIFO_PRIORITY_MIN + 1;
/** Bits of an event word (event_word_t, uint32_t). */
export const EVTCHN_FIFO_PENDING = 31;
export const EVTCHN_FIFO_MASKED = 30;
export const EVTCHN_FIFO_LINKED = 29;
export const EVTCHN_FIFO_BUSY = 28;
export const EVTCHN_FIFO_LINK_BITS = 17;
export const EVTCHN_FIFO_LINK_MASK = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
export const EVTCHN_FIFO_NR_CHANNELS = 1 << EVTCHN_FIFO_LINK_BITS;
export const EVTCHN_FIFO_EVENT_WORDS_PER_PAGE = 4096 / 4;
export const EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES = EVTCHN_FIFO_NR_CHANNELS / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
/** struct evtchn_fifo_control_block: uint32_t ready, _rsvd, head[EVTCHN_FIFO_MAX_QUEUES]. */
export const EVTCHN_FIFO_CONTROL_BLOCK = { ready: 0, head: 8, size: 8 + 4 * EVTCHN_FIFO_MAX_QUEUES } as const;
