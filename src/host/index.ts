// The host builder's public surface.
export {
  parseGuest,
  parseHost,
  HostDescriptionError,
  type GuestDescription,
  type GuestInput,
  type HostDescription,
  type HostInput,
  type NicDescription,
  type NicInput,
} from './description.js';
export { parseXlConfig, xlGuest, XlConfigError, type XlGuestOptions, type XlSetting, type XlValue } from './xl-config.js';
export { Dom0Network } from './dom0-network.js';
export { Dom0Side, Guest, Host, KernelSide, type GuestNic, type HostOptions } from './host.js';
export { loadScenario, parseScenario, ScenarioError, SCENARIO_TESTS, type MigrationSpec, type Scenario, type WorkloadSpec } from './scenario.js';
export { Cluster, parseCluster, type ClusterDescription, type ClusterInput, type WireEnd, type WireInput } from './cluster.js';
export { migrateGuest, MigrationError, type MigrationOptions, type MigrationResult } from './migration.js';
