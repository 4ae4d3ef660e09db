// A guest kernel's Xen support (what Linux has in drivers/xen), for guest and Dom0 code.
export { IoreqServerClient, type DeviceEmulation, type Ioreq, type IoRangeSpec } from './devicemodel.js';
export { EventChannelDriver, HYPERVISOR_CALLBACK_VECTOR, type PortHandler } from './evtchn.js';
export { FrameAllocator } from './frame-alloc.js';
export { GrantClient } from './gnttab.js';
export { type XenPlatform } from './platform.js';
export { XenGuest } from './xen-guest.js';
