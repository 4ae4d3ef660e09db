// The PV split network driver (netfront/netback after Linux 3.18).
export { PvPath, PvNic, parsePvOptions, type PvOptions } from './pv-path.js';
export { Netfront, type NetfrontStats, type NetfrontRings } from './netfront.js';
export { NetfrontDevice, type FrontendFaults } from './netfront-xenbus.js';
export { Vif, type VifStats, type VifRings, XENVIF_NAPI_WEIGHT } from './netback.js';
export { FATAL_SKB_SLOTS_DEFAULT, takeTxRequests, type TxTake } from './tx-requests.js';
export { NetbackDevice, type NetbackFeatures } from './netback-xenbus.js';
