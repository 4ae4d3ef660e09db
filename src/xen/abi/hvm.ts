/**
 * HVM interfaces: hvm_op parameters (public/hvm/hvm_op.h, params.h), the ioreq page
 * (public/hvm/ioreq.h) and the device-model operations (public/hvm/dm_op.h). Names are
 * Xen's own. No behaviour here.
 */

/** hvm_op commands (hypercall 34). */
export const HVMOP_set_param = 0;
export const HVMOP_get_param = 1;

/** HVM parameters. */
export const HVM_PARAM_CALLBACK_IRQ = 0;
export const HVM_PARAM_STORE_PFN = 1;
export const HVM_PARAM_STORE_EVTCHN = 2;
export const HVM_PARAM_IOREQ_PFN = 5;
export const HVM_PARAM_BUFIOREQ_PFN = 6;
export const HVM_PARAM_CONSOLE_PFN = 17;
export const HVM_PARAM_CONSOLE_EVTCHN = 18;
export const HVM_NR_PARAMS = 39;

/** HVM_PARAM_CALLBACK_IRQ: delivery type in bits 63:56. */
export const HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT = 56n;
export const HVM_PARAM_CALLBACK_TYPE_GSI = 0;
export const HVM_PARAM_CALLBACK_TYPE_PCI_INTX = 1;
export const HVM_PARAM_CALLBACK_TYPE_VECTOR = 2;

/** ioreq_t: one 32-byte slot per vCPU in the ioreq page. */
export const IOREQ_SIZE = 32;
export const IOREQ = { addr: 0, data: 8, count: 16, size: 20, vp_eport: 24, flags: 30, type: 31 } as const;
/** Bits of the byte at IOREQ.flags: state in 3:0, data_is_ptr 4, dir 5, df 6. */
export const IOREQ_STATE_MASK = 0x0f;
export const IOREQ_DATA_IS_PTR = 1 << 4;
export const IOREQ_DIR = 1 << 5;
export const IOREQ_DF = 1 << 6;

export const STATE_IOREQ_NONE = 0;
export const STATE_IOREQ_READY = 1;
export const STATE_IOREQ_INPROCESS = 2;
export const STATE_IORESP_READY = 3;

export const IOREQ_TYPE_PIO = 0;
export const IOREQ_TYPE_COPY = 1;
export const IOREQ_TYPE_PCI_CONFIG = 2;
export const IOREQ_TYPE_TIMEOFFSET = 7;
export const IOREQ_TYPE_INVALIDATE = 8;

export const IOREQ_WRITE = 0;
export const IOREQ_READ = 1;

/** dm_op (hypercall 41) operations. */
export const XEN_DMOP_create_ioreq_server = 1;
export const XEN_DMOP_get_ioreq_server_info = 2;
export const XEN_DMOP_map_io_range_to_ioreq_server = 3;
export const XEN_DMOP_unmap_io_range_from_ioreq_server = 4;
export const XEN_DMOP_set_ioreq_server_state = 5;
export const XEN_DMOP_destroy_ioreq_server = 6;

/** I/O range types of map_io_range_to_ioreq_server (ranges are inclusive). */
export const XEN_DMOP_IO_RANGE_PORT = 0;
export const XEN_DMOP_IO_RANGE_MEMORY = 1;
export const XEN_DMOP_IO_RANGE_PCI = 2;

export const HVM_IOREQSRV_BUFIOREQ_OFF = 0;
