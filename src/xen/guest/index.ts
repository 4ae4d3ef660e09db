// A guest kernel's Xen support (what Linux has in drivers/xen), for guest and Dom0 code.
export { BUFFER_IO_MAX_DELAY_MS, IoreqServerClient, type DeviceEmulation, type Ioreq, type IoRangeSpec } from './devicemodel.js';
export * from './pci.js';
export { EventChannelDriver, HYPERVISOR_CALLBACK_VECTOR, type PortHandler } from './evtchn.js';
export { FrameAllocator } from './frame-alloc.js';
export { GrantClient } from './gnttab.js';
export { type XenPlatform } from './platform.js';
export { XenGuest } from './xen-guest.js';
export { gnttabBatchCopy, gnttabBatchMap, xenbusMapRingValloc, xenbusUnmapRingVfree, XENBUS_MAX_RING_GRANTS, type MappedRing } from './grant-ring.js';
export {
  XenbusDevice,
  xenbusDevError,
  xenbusDevFatal,
  xenbusReadDriverState,
  xenbusSwitchState,
  xenbusUnwatchOtherend,
  xenbusWatchOtherend,
  xsErrno,
  type OtherendChanged,
} from './xenbus-device.js';
