// The I/O paths between guests, and what they share.
export { GuestPacketMemory, PacketMemoryExhausted } from './packet-memory.js';
export {
  PathRegistry,
  type AttachedNic,
  type BridgePortHandle,
  type IoPath,
  type NicSpec,
  type PathDom0,
  type PathHost,
  type PathKernel,
} from './path.js';
export { defaultPaths } from './paths.js';
export { TP_CHANNEL_FRAME, TP_FRAME_STEP, TP_RX_DELIVER, TP_TX_START } from './trace-points.js';
export { PvPath, PvNic } from './pv/index.js';
export { PhysicalNic, cable, physicalNicCosts, type PhysicalNicCosts, type WirePort } from './phys/index.js';
export { EmulatedPath } from './emulated/index.js';
export {
  ChannelEnd,
  Hv2mModule,
  Hv2mPath,
  Hv2mNic,
  Hv2mDevice,
  Hv2mChannel,
  parseHv2mOptions,
  hv2mCosts,
  parseFence,
  emptyHv2mStats,
  PeerModule,
  PeerNic,
  SHMEM_PATH_TAG,
  HV2M_PATH_TAG,
  type PeerChannel,
  ETHERTYPE_HV2M_FENCE,
  HV2M_MAX_SLOTS,
  type Hv2mStats,
  type Hv2mOptions,
  type Hv2mModuleOptions,
  type ChannelLink,
  type ChannelOptions,
  type Hv2mCosts,
  channelNode,
  type ChannelEndOptions,
  Hv2mDiscoveryd,
  Hv2mTableWatch,
  type Hv2mPeer,
  HV2M_TABLE,
  HV2M_ANNOUNCE,
  pairAllowed,
  parseHv2mPolicy,
  type Hv2mPolicy,
  type Hv2mRule,
  type Hv2mSelector,
  type DiscoveredGuest,
} from './hv2m/index.js';
export {
  ShmemPath,
  ShmemNic,
  ShmemModule,
  ShmemChannel,
  ShmemEnd,
  parseShmemOptions,
  shmemCosts,
  emptyShmemStats,
  shmemNode,
  type ShmemOptions,
  type ShmemStats,
  type ShmemCosts,
  type ShmemModuleOptions,
} from './shmem/index.js';
export { SriovPath, SriovNic, SriovVfNic, sriovNicOf } from './sriov/index.js';
