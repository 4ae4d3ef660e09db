/**
 * Grant tables, version 1 (xen/include/public/grant_table.h). Names are Xen's own; offsets
 * are for x86-64 and were checked against the header by the reference (shared/reference/
 * xen-abi.md §3). No behaviour here.
 */

/** GNTTABOP_* commands of grant_table_op (hypercall 20). */
export const GNTTABOP_map_grant_ref = 0;
export const GNTTABOP_unmap_grant_ref = 1;
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_dump_table = 3;
export const GNTTABOP_transfer = 4;
export const GNTTABOP_copy = 5;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_unmap_and_replace = 7;
export const GNTTABOP_set_version = 8;

/** grant_entry_v1_t: 8 bytes, 512 per 4 KiB frame. */
export const GRANT_ENTRY_V1_SIZE = 8;
export const GRANT_ENTRY_V1 = { flags: 0, domid: 2, frame: 4 } as const;
export const GRANT_ENTRIES_PER_FRAME_V1 = 4096 / GRANT_ENTRY_V1_SIZE;
/** Refs 0-7 are reserved for the toolstack (0 console ring, 1 xenstore ring). */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;

/** Grant entry flags (GTF_*): type in bits 1:0, then access and status bits. */
export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
export const GTF_transitive = 3;
export const GTF_type_mask = 3;
export const GTF_readonly = 1 << 2;
/** Set by Xen while the grant is in use for reading (mapped or being copied). */
export const GTF_reading = 1 << 3;
/** Set by Xen while the grant is in use for writing. */
export const GTF_writing = 1 << 4;
export const GTF_PWT = 1 << 5;
export const GTF_PCD = 1 << 6;
export const GTF_PAT = 1 << 7;
export const GTF_sub_page = 1 << 8;

/** GNTMAP_* flags of a map request. */
export const GNTMAP_device_map = 1 << 0;
export const GNTMAP_host_map = 1 << 1;
export const GNTMAP_readonly = 1 << 2;
export const GNTMAP_application_map = 1 << 3;
export const GNTMAP_contains_pte = 1 << 4;

/** GNTCOPY_* flags: which side of a copy names a grant reference rather than a local frame. */
export const GNTCOPY_source_gref = 1 << 0;
export const GNTCOPY_dest_gref = 1 << 1;

/** GNTST_* per-operation status codes (int16_t). */
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;
export const GNTST_no_space = -13;

export const GNTST_NAMES: Readonly<Record<number, string>> = {
  0: 'GNTST_okay',
  [-1]: 'GNTST_general_error',
  [-2]: 'GNTST_bad_domain',
  [-3]: 'GNTST_bad_gntref',
  [-4]: 'GNTST_bad_handle',
  [-5]: 'GNTST_bad_virt_addr',
  [-6]: 'GNTST_bad_dev_addr',
  [-7]: 'GNTST_no_device_space',
  [-8]: 'GNTST_permission_denied',
  [-9]: 'GNTST_bad_page',
  [-10]: 'GNTST_bad_copy_arg',
  [-11]: 'GNTST_address_too_big',
  [-12]: 'GNTST_eagain',
  [-13]: 'GNTST_no_space',
};

/** struct gnttab_map_grant_ref, 32 bytes. */
export const GNTTAB_MAP_GRANT_REF = { size: 32, host_addr: 0, flags: 8, ref: 12, dom: 16, status: 18, handle: 20, dev_bus_addr: 24 } as const;
/** struct gnttab_unmap_grant_ref, 24 bytes. */
export const GNTTAB_UNMAP_GRANT_REF = { size: 24, host_addr: 0, dev_bus_addr: 8, handle: 16, status: 20 } as const;
/** struct gnttab_setup_table, 24 bytes (frame_list is a guest handle). */
export const GNTTAB_SETUP_TABLE = { size: 24, dom: 0, nr_frames: 4, status: 8, frame_list: 16 } as const;
/** struct gnttab_query_size, 16 bytes. */
export const GNTTAB_QUERY_SIZE = { size: 16, dom: 0, nr_frames: 4, max_nr_frames: 8, status: 12 } as const;
/** struct gnttab_copy, 40 bytes; `source` and `dest` are gnttab_copy_ptr {u @0 (ref u32 | gmfn u64), domid u16 @8, offset u16 @10}. */
export const GNTTAB_COPY = { size: 40, source: 0, dest: 16, len: 32, flags: 34, status: 36 } as const;
export const GNTTAB_COPY_PTR = { u: 0, domid: 8, offset: 10 } as const;
