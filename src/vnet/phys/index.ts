// The physical NIC of a host's Dom0 and the cable between hosts.
export { PhysicalNic, cable, physicalNicCosts, type PhysicalNicCosts, type WirePort } from './nic.js';
