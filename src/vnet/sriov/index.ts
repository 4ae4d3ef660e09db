// The SR-IOV path: an 82599-class NIC with its VFs, embedded switch and PCIe link; Linux's ixgbevf in the guest.
export { sriovCosts, type PcieCosts, type SriovCosts } from './costs.js';
export { IxgbevfDriver, IXGBEVF_DEFAULT_RXD, IXGBEVF_DEFAULT_TXD, type IxgbevfStats } from './ixgbevf.js';
export { SriovNic, Vf, rxChecksumStatus, type SriovNicStats, type VfStats } from './nic.js';
export { PcieLink, type PcieStats } from './pcie.js';
export { PfDevice, gather, type PfStats } from './pf.js';
export { hostSriovNic, parseSriovOptions, sriovNicOf, SriovPath, SriovVfNic, MAX_VFS, PF_BDF, VF_VECTOR, type SriovOptions } from './sriov-path.js';
export * as regs from './regs.js';
