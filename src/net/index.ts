/**
 * The guest network stack's public surface, for the I/O paths (vnet), the host builder and
 * the benchmarks. Internals of TCP (control blocks, input/output, timers) stay inside.
 */
export * from './wire/index.js';
export {
  Stack,
  Interface,
  stackRx,
  stackTx,
  StackPort,
  type InterfaceConfig,
  type RxHandler,
  type StackOptions,
  type StackPortStats,
  type StackStats,
} from './stack.js';
export {
  Bridge,
  BridgeDevice,
  BridgePort,
  bridgeCosts,
  type BridgeCosts,
  type BridgeDropReason,
  type BridgeOptions,
  type BridgePortStats,
  type BridgeStats,
} from './bridge/bridge.js';
export { Fdb, type FdbEntry, type FdbStats } from './bridge/fdb.js';
export { NetRxSoftirq, type NetRxParams, type SoftnetStats } from './softirq.js';
export { stackCosts, type StackCosts } from './costs.js';
export { directPair, type DirectPair, type DirectPairOptions } from './pair.js';
export {
  DeviceWrapper,
  NapiTap,
  NO_OFFLOADS,
  fixFeatures,
  type DeviceFeatures,
  type DeviceUpper,
  type Napi,
  type NetDevice,
} from './iface/device.js';
export { DirectLink, LinkEnd, type DirectLinkOptions, type LinkStats } from './iface/direct-link.js';
export { gsoSegment } from './iface/gso.js';
export { fragmentIpv4 } from './ip/fragment.js';
export { Hooks, type HookVerdict, type PostRoutingHook, type PreRoutingHook } from './iface/hooks.js';
export { LoopbackDevice } from './iface/loopback.js';
export { lroMerge } from './iface/lro.js';
export {
  CSUM_NONE,
  CSUM_PARTIAL,
  CSUM_UNNECESSARY,
  GSO_NONE,
  GSO_TCPV4,
  HEAP_MEMORY,
  HeapBuffer,
  Packet,
  PacketBuffer,
  csumFromNetif,
  csumToNetif,
  type CsumState,
  type GsoType,
  type HeldBytes,
  type PacketFrag,
  type PacketMemory,
} from './iface/packet.js';
export { PcapTap, PcapWriter } from './iface/pcap.js';
export { TxQueue, type TxQueueCosts, type TxQueueStats } from './iface/tx-queue.js';
export { SocketError, isSocketError, type SocketErrorCode } from './socket/errors.js';
export { PingSocket, type EchoReply, type IcmpStats } from './socket/icmp.js';
export { TcpSocket, type TcpOptions, type TcpSocketStats, type TcpState } from './socket/tcp-socket.js';
export { UdpSocket, type Datagram, type UdpStats } from './socket/udp.js';
