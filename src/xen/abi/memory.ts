/**
 * memory_op (hypercall 12) commands the model implements (public/memory.h). No behaviour.
 */
export const XENMEM_add_to_physmap = 7;
export const XENMEM_acquire_resource = 28;

/** XENMAPSPACE_*: what XENMEM_add_to_physmap places at a guest frame. */
export const XENMAPSPACE_shared_info = 0;
export const XENMAPSPACE_grant_table = 1;
export const XENMAPSPACE_gmfn = 2;
export const XENMAPSPACE_gmfn_range = 3;
export const XENMAPSPACE_gmfn_foreign = 4;
export const XENMAPSPACE_dev_mmio = 5;

/** XENMEM_acquire_resource types and the ioreq server's frames. */
export const XENMEM_resource_ioreq_server = 0;
export const XENMEM_resource_grant_table = 1;
export const XENMEM_resource_ioreq_server_frame_bufioreq = 0;
export const XENMEM_resource_ioreq_server_frame_ioreq = (n: number): number => 1 + n;
