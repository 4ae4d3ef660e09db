// The emulated NIC path: Linux's e1000 driver, qemu-dm's e1000 in Dom0, the tap.
export { EmulatedNic, EmulatedPath, parseEmulatedOptions, type EmulatedOptions } from './emulated-path.js';
export { E1000Device, type E1000Backend, type E1000Stats } from './e1000-device.js';
export { E1000Driver, type E1000DriverStats, type E1000Location, type E1000Resources } from './e1000-driver.js';
export * from './e1000-pci.js';
export { MapCache } from './map-cache.js';
export { QemuDm, type QemuDmStats } from './qemu-dm.js';
export { TapDevice, type TapStats } from './tap.js';
