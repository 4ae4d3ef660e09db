import { SimpleCpu, type SimEnvironment } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { DirectLink, type DirectLinkOptions } from './iface/direct-link.js';
import type { PacketMemory } from './iface/packet.js';
import { PcapTap, type PcapWriter } from './iface/pcap.js';
import { Stack, type Interface } from './stack.js';
import { ipv4, mac, type Ipv4Addr } from './wire/addr.js';

export interface DirectPair {
  client: Stack;
  server: Stack;
  clientAddr: Ipv4Addr;
  serverAddr: Ipv4Addr;
  clientIf: Interface;
  serverIf: Interface;
  link: DirectLink;
  clientCpu: SimpleCpu;
  serverCpu: SimpleCpu;
}

export interface DirectPairOptions extends Omit<DirectLinkOptions, 'irqCost' | 'rxRing'> {
  /** RX descriptors per end; default the profile's net.dev.rxRing. */
  rxRing?: number;
  /** Capture the client's side of the link. */
  pcap?: PcapWriter;
  /** Where each stack's packet buffers are (default plain memory). */
  memory?: { client?: PacketMemory; server?: PacketMemory };
}

/**
 * Two guest stacks, each on its own dedicated CPU, joined by a direct link: 10.0.0.1/24
 * (client) and 10.0.0.2/24 (server). For tests and for running the workloads before the
 * Xen I/O paths exist.
 */
export function directPair(env: SimEnvironment, profile: Profile, opts: DirectPairOptions): DirectPair {
  const clientCpu = new SimpleCpu(env, 'client-cpu');
  const serverCpu = new SimpleCpu(env, 'server-cpu');
  const client = new Stack({ env, cpu: clientCpu, profile, name: 'client', memory: opts.memory?.client });
  const server = new Stack({ env, cpu: serverCpu, profile, name: 'server', memory: opts.memory?.server });
  const link = new DirectLink(env, 'wire', mac('02:00:00:00:00:01'), mac('02:00:00:00:00:02'), {
    ...opts,
    rxRing: opts.rxRing ?? client.costs.rxRing,
    irqCost: client.costs.irq,
  });
  const clientAddr = ipv4('10.0.0.1');
  const serverAddr = ipv4('10.0.0.2');
  const clientIf = client.addInterface(opts.pcap !== undefined ? new PcapTap(link.a, opts.pcap, env) : link.a, { address: clientAddr, prefix: 24 });
  const serverIf = server.addInterface(link.b, { address: serverAddr, prefix: 24 });
  return { client, server, clientAddr, serverAddr, clientIf, serverIf, link, clientCpu, serverCpu };
}
