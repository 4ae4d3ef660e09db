// 82599 virtual-function registers and advanced descriptor layouts, as Linux 3.18's
// drivers/net/ethernet/intel/ixgbevf/regs.h and ixgbe_type.h / vf.h name them (the 82599
// datasheet, section 8.3 "VF registers" and 7.1.6 / 7.2.3 for the descriptors).

/** VF BAR 0 register offsets (queue 0). */
export const IXGBE_VTEIMS = 0x00108;
export const IXGBE_VTEIMC = 0x0010c;
export const IXGBE_VTEITR0 = 0x00820;
export const IXGBE_VFRDBAL0 = 0x01000;
export const IXGBE_VFRDBAH0 = 0x01004;
export const IXGBE_VFRDLEN0 = 0x01008;
export const IXGBE_VFRDH0 = 0x01010;
export const IXGBE_VFSRRCTL0 = 0x01014;
export const IXGBE_VFRDT0 = 0x01018;
export const IXGBE_VFRXDCTL0 = 0x01028;
export const IXGBE_VFTDBAL0 = 0x02000;
export const IXGBE_VFTDBAH0 = 0x02004;
export const IXGBE_VFTDLEN0 = 0x02008;
export const IXGBE_VFTDH0 = 0x02010;
export const IXGBE_VFTDT0 = 0x02018;
export const IXGBE_VFTXDCTL0 = 0x02028;
/** RXDCTL/TXDCTL.ENABLE. */
export const IXGBE_XDCTL_ENABLE = 1 << 25;
/** EITR interval field (bits 11:3, units of 2.048 µs at 10 Gb/s). */
export const IXGBE_MAX_EITR = 0x00000ff8;
export const EITR_UNIT_NS = 2048;

/** Every advanced descriptor is 16 bytes. */
export const DESC_SIZE = 16;

// TX advanced data descriptor (read format): addr u64 @0, cmd_type_len u32 @8, olinfo_status u32 @12.
export const IXGBE_ADVTXD_DTALEN_MASK = 0xffff;
export const IXGBE_ADVTXD_DTYP_SHIFT = 20;
export const IXGBE_ADVTXD_DTYP_CTXT = 0x2;
export const IXGBE_ADVTXD_DTYP_DATA = 0x3;
export const IXGBE_TXD_CMD_EOP = 1 << 24;
export const IXGBE_TXD_CMD_IFCS = 1 << 25;
export const IXGBE_TXD_CMD_RS = 1 << 27;
export const IXGBE_TXD_CMD_DEXT = 1 << 29;
export const IXGBE_ADVTXD_DCMD_TSE = 1 << 31;
/** olinfo_status: DD (write-back, bit 0), POPTS IXSM (bit 8) / TXSM (bit 9), PAYLEN from bit 14. */
export const IXGBE_TXD_STAT_DD = 1;
export const IXGBE_ADVTXD_POPTS_IXSM = 1 << 8;
export const IXGBE_ADVTXD_POPTS_TXSM = 1 << 9;
export const IXGBE_ADVTXD_PAYLEN_SHIFT = 14;
// TX context descriptor: vlan_macip_lens u32 @0 (IPLEN 8:0, MACLEN 15:9), seqnum_seed @4,
// type_tucmd_mlhl @8 (TUCMD: IPV4 bit 10, L4T bits 12:11 = 0 UDP / 1 TCP; DTYP; DEXT), mss_l4len_idx @12 (L4LEN 15:8, MSS 31:16).
export const IXGBE_ADVTXD_MACLEN_SHIFT = 9;
export const IXGBE_ADVTXD_TUCMD_IPV4 = 1 << 10;
export const IXGBE_ADVTXD_TUCMD_L4T_TCP = 1 << 11;
export const IXGBE_ADVTXD_L4LEN_SHIFT = 8;
export const IXGBE_ADVTXD_MSS_SHIFT = 16;
/** IXGBE_MAX_DATA_PER_TXD: one data descriptor carries at most 16 KiB (1 << IXGBE_MAX_TXD_PWR). */
export const IXGBE_MAX_DATA_PER_TXD = 1 << 14;
/** The 82599 takes at most 40 data descriptors for one packet (datasheet 7.2.3.3; more is a malformed chain). */
export const IXGBE_MAX_TX_DESC_PER_PACKET = 40;

// RX advanced descriptor: read format pkt_addr u64 @0, hdr_addr u64 @8; write-back
// status_error u32 @8 (DD bit 0, EOP bit 1, L4CS bit 5, IPCS bit 6; RXE bit 29, TCPE bit 30, IPE bit 31), length u16 @12.
export const IXGBE_RXD_STAT_DD = 1 << 0;
export const IXGBE_RXD_STAT_EOP = 1 << 1;
export const IXGBE_RXD_STAT_L4CS = 1 << 5;
export const IXGBE_RXD_STAT_IPCS = 1 << 6;
export const IXGBE_RXDADV_ERR_RXE = 1 << 29;
export const IXGBE_RXDADV_ERR_TCPE = 1 << 30;
export const IXGBE_RXDADV_ERR_IPE = 1 << 31;
