/**
 * The Intel 8254x (82540EM) register map and descriptor layouts as QEMU's hw/net/e1000_regs.h
 * and Linux's e1000_hw.h name them (PCI/PCI-X Family of Gigabit Ethernet Controllers Software
 * Developer's Manual, §13). Byte offsets in BAR 0.
 */
export const E1000_CTRL = 0x0000;
export const E1000_STATUS = 0x0008;
export const E1000_EECD = 0x0010;
export const E1000_EERD = 0x0014;
export const E1000_MDIC = 0x0020;
export const E1000_ICR = 0x00c0;
export const E1000_ITR = 0x00c4;
export const E1000_ICS = 0x00c8;
export const E1000_IMS = 0x00d0;
export const E1000_IMC = 0x00d8;
export const E1000_RCTL = 0x0100;
export const E1000_TCTL = 0x0400;
export const E1000_TIPG = 0x0410;
export const E1000_RDBAL = 0x2800;
export const E1000_RDBAH = 0x2804;
export const E1000_RDLEN = 0x2808;
export const E1000_RDH = 0x2810;
export const E1000_RDT = 0x2818;
export const E1000_RDTR = 0x2820;
export const E1000_RADV = 0x282c;
export const E1000_TDBAL = 0x3800;
export const E1000_TDBAH = 0x3804;
export const E1000_TDLEN = 0x3808;
export const E1000_TDH = 0x3810;
export const E1000_TDT = 0x3818;
export const E1000_TIDV = 0x3820;
export const E1000_TADV = 0x382c;
export const E1000_MTA = 0x5200;
export const E1000_RA = 0x5400;
/** Statistics (clear on read). */
export const E1000_CRCERRS = 0x4000;
export const E1000_MPC = 0x4010;
export const E1000_COLC = 0x4028;
export const E1000_GPRC = 0x4074;
export const E1000_BPRC = 0x4078;
export const E1000_MPRC = 0x407c;
export const E1000_GPTC = 0x4080;
export const E1000_GORCL = 0x4088;
export const E1000_GORCH = 0x408c;
export const E1000_GOTCL = 0x4090;
export const E1000_GOTCH = 0x4094;
export const E1000_RNBC = 0x40a0;
export const E1000_TORL = 0x40c0;
export const E1000_TORH = 0x40c4;
export const E1000_TOTL = 0x40c8;
export const E1000_TOTH = 0x40cc;
export const E1000_TPR = 0x40d0;
export const E1000_TPT = 0x40d4;
export const E1000_MPTC = 0x40f0;
export const E1000_BPTC = 0x40f4;
export const E1000_TSCTC = 0x40f8;
/** The statistics registers e1000_update_stats reads (all clear on read in QEMU: mac_read_clr4/8). */
export const E1000_STATS = [
  E1000_CRCERRS,
  E1000_MPC,
  E1000_COLC,
  E1000_GPRC,
  E1000_BPRC,
  E1000_MPRC,
  E1000_GPTC,
  E1000_GORCL,
  E1000_GORCH,
  E1000_GOTCL,
  E1000_GOTCH,
  E1000_RNBC,
  E1000_TORL,
  E1000_TORH,
  E1000_TOTL,
  E1000_TOTH,
  E1000_TPR,
  E1000_TPT,
  E1000_MPTC,
  E1000_BPTC,
  E1000_TSCTC,
] as const;

export const E1000_CTRL_RST = 1 << 26;
export const E1000_CTRL_SLU = 1 << 6;
export const E1000_STATUS_LU = 1 << 1;
/** STATUS.SPEED (bits 7:6): 10b is 1000 Mb/s. */
export const E1000_STATUS_SPEED_MASK = 0x000000c0;
export const E1000_STATUS_SPEED_1000 = 0x00000080;
/** QEMU's reset STATUS: GIO master enable, ASDV 1000, MTXCKOK, 1000 Mb/s, full duplex, link up. */
export const E1000_STATUS_RESET = 0x80080783;

/** Interrupt causes (ICR/ICS/IMS/IMC bits). */
export const E1000_ICR_TXDW = 0x01;
export const E1000_ICR_TXQE = 0x02;
export const E1000_ICR_LSC = 0x04;
export const E1000_ICR_RXSEQ = 0x08;
export const E1000_ICR_RXDMT0 = 0x10;
export const E1000_ICR_RXO = 0x40;
export const E1000_ICR_RXT0 = 0x80;

export const E1000_RCTL_EN = 1 << 1;
export const E1000_RCTL_UPE = 1 << 3;
export const E1000_RCTL_MPE = 1 << 4;
export const E1000_RCTL_LPE = 1 << 5;
export const E1000_RCTL_RDMTS_SHIFT = 8;
export const E1000_RCTL_BAM = 1 << 15;
export const E1000_RCTL_SZ_SHIFT = 16;
export const E1000_RCTL_BSEX = 1 << 25;
export const E1000_RCTL_SECRC = 1 << 26;
export const E1000_TCTL_EN = 1 << 1;
export const E1000_TCTL_PSP = 1 << 3;
export const E1000_RAH_AV = 0x80000000;

export const E1000_MDIC_READY = 1 << 28;
export const E1000_MDIC_OP_READ = 2 << 26;
export const E1000_EERD_START = 1 << 0;
export const E1000_EERD_DONE = 1 << 4;
export const E1000_EERD_ADDR_SHIFT = 8;
export const E1000_EERD_DATA_SHIFT = 16;
/** The EEPROM words 0x00-0x3f sum to this (EEPROM_SUM). */
export const EEPROM_SUM = 0xbaba;

/** A descriptor is 16 bytes; ring lengths are multiples of 128 bytes (RDLEN/TDLEN bits 7-19). */
export const DESC_SIZE = 16;
export const DLEN_MASK = 0xfff80;

/** TX descriptor (legacy / data / context), cmd byte in bits 24-31 of the lower dword. */
export const E1000_TXD_CMD_EOP = 0x01000000;
export const E1000_TXD_CMD_IFCS = 0x02000000;
export const E1000_TXD_CMD_IC = 0x04000000;
export const E1000_TXD_CMD_TSE = 0x04000000;
/** In a context descriptor: the offload is for IPv4 (IP) and TCP (TCP) — the same bits as IFCS and EOP in a data descriptor. */
export const E1000_TXD_CMD_IP = 0x02000000;
export const E1000_TXD_CMD_TCP = 0x01000000;
export const E1000_TXD_CMD_RS = 0x08000000;
export const E1000_TXD_CMD_RPS = 0x10000000;
export const E1000_TXD_CMD_DEXT = 0x20000000;
export const E1000_TXD_CMD_VLE = 0x40000000;
export const E1000_TXD_CMD_IDE = 0x80000000;
export const E1000_TXD_DTYP_D = 0x00100000;
export const E1000_TXD_DTYP_C = 0x00000000;
export const E1000_TXD_STAT_DD = 0x00000001;
export const E1000_TXD_POPTS_IXSM = 0x01;
export const E1000_TXD_POPTS_TXSM = 0x02;
export const E1000_TXD_LEN_MASK = 0xffff;
export const E1000_TXD_PAYLEN_MASK = 0xfffff;

/** RX descriptor status bits. */
export const E1000_RXD_STAT_DD = 0x01;
export const E1000_RXD_STAT_EOP = 0x02;
export const E1000_RXD_STAT_IXSM = 0x04;

/** The shortest frame the device pads to, and the longest it takes without RCTL.LPE (QEMU MIN_BUF_SIZE, MAXIMUM_ETHERNET_VLAN_SIZE). */
export const MIN_BUF_SIZE = 60;
export const MAXIMUM_ETHERNET_VLAN_SIZE = 1522;
/** QEMU's TX packet buffer (struct e1000_tx data[0x10000]). */
export const TX_BUFFER = 0x10000;
/** The BAR size of the 82540EM's memory window (PNPMMIO_SIZE). */
export const E1000_MMIO_SIZE = 0x20000;
/** PCI IDs. */
export const E1000_VENDOR_INTEL = 0x8086;
export const E1000_DEV_ID_82540EM = 0x100e;
