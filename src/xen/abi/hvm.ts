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
export const XEN_DMOP_set_pci_intx_level = 8;
export const XEN_DMOP_set_isa_irq_level = 9;
export const XEN_DMOP_set_pci_link_route = 10;
export const XEN_DMOP_inject_msi = 14;

/** The HVM virtual IOAPIC (xen/arch/x86/hvm/vioapic.c, asm/hvm/vioapic.h). */
export const VIOAPIC_DEFAULT_BASE_ADDRESS = 0xfec00000;
export const VIOAPIC_MEM_LENGTH = 0x100;
export const VIOAPIC_NUM_PINS = 48;
export const VIOAPIC_VERSION_ID = 0x11;
export const VIOAPIC_REG_SELECT = 0x00;
export const VIOAPIC_REG_WINDOW = 0x10;
export const VIOAPIC_REG_EOI = 0x40;
export const VIOAPIC_REG_APIC_ID = 0x00;
export const VIOAPIC_REG_VERSION = 0x01;
export const VIOAPIC_REG_ARB_ID = 0x02;
/** Redirection entry fields (low dword: vector 0-7, delivery mode 8-10, dest mode 11, delivery status 12, polarity 13, remote IRR 14, trigger 15, mask 16; destination in 56-63). */
export const IOAPIC_RTE_REMOTE_IRR = 1n << 14n;
export const IOAPIC_RTE_LEVEL = 1n << 15n;
export const IOAPIC_RTE_MASK = 1n << 16n;
/** Delivery modes (dest_Fixed, dest_LowestPrio). */
export const dest_Fixed = 0;
export const dest_LowestPrio = 1;
/** MSI address/data fields (asm/msi.h). */
export const MSI_ADDR_BASE_LO = 0xfee00000;
export const MSI_ADDR_DEST_ID_SHIFT = 12;
export const MSI_ADDR_DESTMODE_LOGIC = 1 << 2;
export const MSI_DATA_TRIGGER_LEVEL = 1 << 15;
export const MSI_DATA_DELIVERY_MODE_SHIFT = 8;

/** I/O range types of map_io_range_to_ioreq_server (ranges are inclusive). */
export const XEN_DMOP_IO_RANGE_PORT = 0;
export const XEN_DMOP_IO_RANGE_MEMORY = 1;
export const XEN_DMOP_IO_RANGE_PCI = 2;

export const HVM_IOREQSRV_BUFIOREQ_OFF = 0;
/** handle_bufioreq of XEN_DMOP_create_ioreq_server (public/hvm/dm_op.h). */
export const HVM_IOREQSRV_BUFIOREQ_LEGACY = 1;
export const HVM_IOREQSRV_BUFIOREQ_ATOMIC = 2;

/** XEN_DMOP_PCI_SBDF: the segment/bus/device/function a XEN_DMOP_IO_RANGE_PCI range names. */
export function XEN_DMOP_PCI_SBDF(s: number, b: number, d: number, f: number): number {
  return (((s & 0xffff) << 16) | ((b & 0xff) << 8) | ((d & 0x1f) << 3) | (f & 0x7)) >>> 0;
}

/**
 * The buffered ioreq page (struct buffered_iopage, public/hvm/ioreq.h): read_pointer and
 * write_pointer (free-running 32-bit), then IOREQ_BUFFER_SLOT_NUM slots of struct buf_ioreq,
 * 8 bytes each. As gcc lays the slot out on x86: type u8 at byte 0; pad:1 dir:1 size:2 in
 * bits 8-11 of the little-endian u32 at 0 (size 0..3 for 1, 2, 4, 8 bytes; an 8-byte access
 * takes two slots, the high half in the second); addr:20 in its bits 12-31; data u32 at 4.
 */
export const IOREQ_BUFFER_SLOT_NUM = 511;
export const BUFFERED_IOPAGE = { read_pointer: 0, write_pointer: 4, buf_ioreq: 8 } as const;
export const BUF_IOREQ_SIZE = 8;
/** Fields of a slot's u32 at 0 (type in bits 0-7) and the u32 data at 4. */
export const BUF_IOREQ = { word: 0, data: 4 } as const;
export const BUF_IOREQ_DIR_SHIFT = 9;
export const BUF_IOREQ_SIZE_SHIFT = 10;
export const BUF_IOREQ_ADDR_SHIFT = 12;
