/**
 * Core constants of Xen's public ABI (xen/include/public/xen.h and errno.h), x86-64.
 * Names are Xen's own. No behaviour here.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;

/** domid_t values with a special meaning (xen.h). */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_IDLE = 0x7fff;

/** Hypercall numbers (__HYPERVISOR_*), the ones the model dispatches or names. */
export const __HYPERVISOR_set_callbacks = 4;
export const __HYPERVISOR_memory_op = 12;
export const __HYPERVISOR_xen_version = 17;
export const __HYPERVISOR_grant_table_op = 20;
export const __HYPERVISOR_sched_op = 29;
export const __HYPERVISOR_callback_op = 30;
export const __HYPERVISOR_event_channel_op = 32;
export const __HYPERVISOR_physdev_op = 33;
export const __HYPERVISOR_hvm_op = 34;
export const __HYPERVISOR_dm_op = 41;

/** Xen's errno values (public/errno.h); hypercalls return them negated. */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ENOSYS = 38;
export const EOPNOTSUPP = 95;

/** callback_op (public/callback.h): how a PV guest registers its event upcall entry. */
export const CALLBACKOP_register = 0;
export const CALLBACKTYPE_event = 0;

/** sched_op commands (public/sched.h). */
export const SCHEDOP_yield = 0;
export const SCHEDOP_block = 1;
export const SCHEDOP_poll = 3;
