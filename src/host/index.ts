// The host builder's public surface.
export { parseGuest, parseHost, HostDescriptionError, type GuestDescription, type GuestInput, type HostDescription, type HostInput, type NicDescription } from './description.js';
export { Dom0Network } from './dom0-network.js';
export { Dom0Side, Guest, Host, KernelSide, type GuestNic, type HostOptions } from './host.js';
