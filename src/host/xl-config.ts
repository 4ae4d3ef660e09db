/**
 * xl domain configuration files (xl.cfg(5)), read with the syntax of xl's own parser
 * (tools/libs/util/libxlu_cfg_l.l and libxlu_cfg_y.y): `key = value` or `key += value`
 * statements ended by a newline or `;`, `#` comments to the end of the line, values that are
 * strings ('…' or "…" with C escapes), numbers (kept as text and read as strtol base 0 does:
 * 0x… hex, a leading 0 octal) or bracketed lists that may span lines and end with a comma.
 * Then the keys a guest of this model uses are mapped to a guest description, each error
 * naming the file and line.
 */
import type { GuestInput, NicInput } from './description.js';

export type XlValue = { kind: 'atom'; text: string; quoted: boolean; line: number } | { kind: 'list'; items: XlValue[]; line: number };

export interface XlSetting {
  key: string;
  value: XlValue;
  line: number;
}

/** A mistake in an xl.cfg file: its name, line and what was expected. */
export class XlConfigError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'XlConfigError';
  }
}

type Tok = { t: 'ident' | 'number' | 'string'; v: string; line: number } | { t: ',' | '[' | ']' | '=' | '+=' | ';' | 'nl'; line: number };

const ESCAPES: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function dequote(file: string, line: number, s: string): string {
  let out = '';
  for (let i = 1; i < s.length - 1; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[++i]!;
    if (n in ESCAPES) out += ESCAPES[n];
    else if (n === 'x') {
      const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 1, s.length - 1));
      if (m === null) throw new XlConfigError(file, line, 'invalid digit after backslash hex numerical character escape in quoted string');
      out += String.fromCharCode(parseInt(m[0], 16));
      i += m[0].length;
    } else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i, s.length - 1))!;
      out += String.fromCharCode(parseInt(m[0], 8));
      i += m[0].length - 1;
    } else throw new XlConfigError(file, line, `invalid character after backslash in quoted string`);
  }
  return out;
}

function lex(file: string, text: string): Tok[] {
  const toks: Tok[] = [];
  let line = 1;
  const re = /([a-z][._0-9a-z]*)|([0-9][0-9a-fx]*)|([ \t\r]+)|(#[^\n]*)|(\n)|('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")|(\+=)|([,[\]=;])/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null) {
      const rest = /^[^ \t\n]*/.exec(text.slice(pos))![0] || text[pos]!;
      const python = /^[+\-.():]/.test(rest) ? ' (this looks like Python syntax, which xl no longer reads)' : '';
      throw new XlConfigError(file, line, `lexical error at "${rest}"${python}`);
    }
    pos = re.lastIndex;
    if (m[1] !== undefined) toks.push({ t: 'ident', v: m[1], line });
    else if (m[2] !== undefined) toks.push({ t: 'number', v: m[2], line });
    else if (m[5] !== undefined) {
      toks.push({ t: 'nl', line });
      line++;
    } else if (m[6] !== undefined) toks.push({ t: 'string', v: dequote(file, line, m[6]), line });
    else if (m[7] !== undefined) toks.push({ t: '+=', line });
    else if (m[8] !== undefined) toks.push({ t: m[8] as ',' | '[' | ']' | '=' | ';', line });
  }
  return toks;
}

/** Parses an xl.cfg text into its settings in file order (`+=` already concatenated, as libxlu does). */
export function parseXlConfig(file: string, text: string): Map<string, XlSetting> {
  const toks = lex(file, text);
  let i = 0;
  const peek = (): Tok | undefined => toks[i];
  const lastLine = (): number => toks[toks.length - 1]?.line ?? 1;
  const skipNl = (): void => {
    while (peek()?.t === 'nl') i++;
  };
  const value = (): XlValue => {
    const t = peek();
    if (t === undefined) throw new XlConfigError(file, lastLine(), 'syntax error: a value was expected at the end of the file');
    if (t.t === 'string' || t.t === 'number') {
      i++;
      return { kind: 'atom', text: t.v, quoted: t.t === 'string', line: t.line };
    }
    if (t.t === '[') {
      i++;
      skipNl();
      const items: XlValue[] = [];
      while (peek()?.t !== ']') {
        items.push(value());
        skipNl();
        const sep = peek();
        if (sep?.t === ',') {
          i++;
          skipNl();
        } else if (sep?.t !== ']') throw new XlConfigError(file, sep?.line ?? lastLine(), 'syntax error: "," or "]" expected in a list');
      }
      i++;
      return { kind: 'list', items, line: t.line };
    }
    throw new XlConfigError(file, t.line, 'syntax error: a value (a quoted string, a number or a [list]) was expected');
  };
  const out = new Map<string, XlSetting>();
  while (i < toks.length) {
    const t = toks[i]!;
    if (t.t === 'nl' || t.t === ';') {
      i++;
      continue;
    }
    if (t.t !== 'ident') throw new XlConfigError(file, t.line, 'syntax error: a setting name (lower-case letters, digits, "." and "_") was expected');
    i++;
    const op = peek();
    if (op?.t !== '=' && op?.t !== '+=') throw new XlConfigError(file, t.line, `syntax error: "=" expected after ${t.v}`);
    i++;
    const v = value();
    const end = peek();
    if (end !== undefined && end.t !== 'nl' && end.t !== ';')
      throw new XlConfigError(file, end.line, `syntax error: the setting ${t.v} must end at the end of the line or with ";"`);
    const prev = out.get(t.v);
    if (op.t === '+=' && prev !== undefined) {
      // xlu__cfg_concat_vals: two strings concatenate, two lists append; anything else is an error.
      if (prev.value.kind === 'list' && v.kind === 'list') prev.value.items.push(...v.items);
      else if (prev.value.kind === 'atom' && v.kind === 'atom') prev.value = { ...prev.value, text: prev.value.text + v.text };
      else throw new XlConfigError(file, t.line, `+= on ${t.v} mixes a list and a single value`);
      continue;
    }
    out.set(t.v, { key: t.v, value: v, line: t.line });
  }
  return out;
}

/** strtol(s, &end, 0) that must consume the whole text (libxlu's xlu_cfg_get_long). */
function xlNumber(file: string, s: XlSetting): number {
  if (s.value.kind !== 'atom') throw new XlConfigError(file, s.line, `${s.key} must be a number, not a list`);
  const t = s.value.text.trim();
  const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : /^0[0-7]*$/.test(t) ? parseInt(t, 8) : /^[1-9][0-9]*$/.test(t) ? parseInt(t, 10) : NaN;
  if (!Number.isSafeInteger(n)) throw new XlConfigError(file, s.line, `parameter \`${s.key}' is not a valid number ("${s.value.text}")`);
  return n;
}

function xlString(file: string, s: XlSetting): string {
  if (s.value.kind !== 'atom') throw new XlConfigError(file, s.line, `${s.key} must be a single value, not a list`);
  return s.value.text;
}

function xlStrings(file: string, s: XlSetting): { text: string; line: number }[] {
  if (s.value.kind !== 'list') throw new XlConfigError(file, s.line, `${s.key} must be a list [ '…', … ]`);
  return s.value.items.map((it) => {
    if (it.kind !== 'atom') throw new XlConfigError(file, it.line, `${s.key}: a list inside the list is not allowed here`);
    return { text: it.text, line: it.line };
  });
}

/** xl's CPU list syntax ("all", "0-3,5", "^1"): the pCPUs named. */
function cpuList(file: string, line: number, text: string): number[] {
  const set = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(\^)?(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) throw new XlConfigError(file, line, `cpus: "${part}" is not a CPU, a range a-b or ^CPU`);
    const lo = Number(m[2]);
    const hi = m[3] !== undefined ? Number(m[3]) : lo;
    if (hi < lo) throw new XlConfigError(file, line, `cpus: range ${part} runs backwards`);
    for (let c = lo; c <= hi; c++) {
      if (m[1] !== undefined) set.delete(c);
      else set.add(c);
    }
  }
  return [...set].sort((a, b) => a - b);
}

/** The settings this model reads; others xl knows are accepted and ignored (listed here), anything else is an error. */
const USED = new Set(['name', 'type', 'builder', 'memory', 'vcpus', 'cpus', 'cpu_weight', 'cap', 'vif', 'pci']);
const IGNORED = new Set([
  'maxmem',
  'maxvcpus',
  'kernel',
  'ramdisk',
  'cmdline',
  'extra',
  'root',
  'disk',
  'boot',
  'bootloader',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'uuid',
  'vnc',
  'vnclisten',
  'sdl',
  'serial',
  'stdvga',
  'vga',
  'videoram',
  'acpi',
  'apic',
  'pae',
  'hap',
  'viridian',
  'usb',
  'usbdevice',
  'localtime',
  'device_model_version',
  'device_model_override',
  'xen_platform_pci',
  'shadow_memory',
  'seclabel',
  'pool',
  'cpus_soft',
  'nographic',
  'keymap',
  'pci_permissive',
  'pci_msitranslate',
  'pci_power_mgmt',
  'gfx_passthru',
  'tsc_mode',
  'timer_mode',
  'nestedhvm',
]);

/** One entry of `vif = [...]` (xl-network-configuration(5)): comma-separated key=value pairs. */
function parseVif(file: string, line: number, text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === '') return out;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new XlConfigError(file, line, `vif: "${part.trim()}" is not key=value`);
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (!['mac', 'bridge', 'ip', 'type', 'model', 'vifname', 'script', 'backend', 'rate', 'gatewaydev', 'devid', 'mtu'].includes(k))
      throw new XlConfigError(
        file,
        line,
        `vif: unknown key "${k}" (xl-network-configuration(5) keys: mac, bridge, ip, type, model, vifname, script, backend, rate, mtu…)`,
      );
    out[k] = v;
  }
  return out;
}

export interface XlGuestOptions {
  /** The I/O path of each vif, in order, overriding what its type/model implies. */
  paths?: readonly string[];
  tenant?: string;
  /** Prefix length for vif `ip=` addresses (xl gives an address only); default 24. */
  prefix?: number;
}

/**
 * A guest description from an xl.cfg. A vif's path comes from its settings unless `paths`
 * names it: `type=vif` (or a PV guest) → `pv`; `model=e1000` or `type=ioemu` on an HVM guest
 * → `emulated`; an HVM vif with neither gets `pv` (the PV-on-HVM NIC that Linux's
 * xen-netfront takes over once the platform device unplugs the emulated one). Each `pci=`
 * entry (a VF) becomes a NIC on `sriov` — its MAC and address are the pci entry's `mac=`,
 * `ip=` options, as this model needs them.
 */
export function xlGuest(file: string, text: string, opts: XlGuestOptions = {}): GuestInput {
  const cfg = parseXlConfig(file, text);
  for (const s of cfg.values()) {
    if (!USED.has(s.key) && !IGNORED.has(s.key))
      throw new XlConfigError(file, s.line, `unknown setting "${s.key}" (xl.cfg(5)); this model reads ${[...USED].join(', ')}`);
  }
  const get = (k: string): XlSetting | undefined => cfg.get(k);
  const nameS = get('name');
  if (nameS === undefined) throw new XlConfigError(file, 1, 'name is required (xl.cfg(5): name = "…")');
  const g: GuestInput = { name: xlString(file, nameS) };
  const typeS = get('type') ?? get('builder');
  if (typeS !== undefined) {
    const t = xlString(file, typeS);
    const kind = t === 'hvm' ? 'hvm' : t === 'pv' || t === 'generic' ? 'pv' : null;
    if (kind === null) throw new XlConfigError(file, typeS.line, `${typeS.key} = "${t}": this model has hvm and pv guests`);
    g.type = kind;
  } else g.type = 'pv'; // xl's default guest type is PV
  const mem = get('memory');
  if (mem !== undefined) g.memoryMiB = xlNumber(file, mem);
  const vc = get('vcpus');
  if (vc !== undefined) g.vcpus = xlNumber(file, vc);
  const cpus = get('cpus');
  if (cpus !== undefined) {
    if (cpus.value.kind === 'list') g.pinning = xlStrings(file, cpus).map((c) => cpuList(file, c.line, c.text));
    else if (cpus.value.text !== 'all') g.pinning = cpuList(file, cpus.line, cpus.value.text);
  }
  const w = get('cpu_weight');
  if (w !== undefined) g.weight = xlNumber(file, w);
  const cap = get('cap');
  if (cap !== undefined) g.cap = xlNumber(file, cap);
  if (opts.tenant !== undefined) g.tenant = opts.tenant;
  const nics: NicInput[] = [];
  const prefix = opts.prefix ?? 24;
  const vifS = get('vif');
  const pciS = get('pci');
  const entries: { line: number; kv: Record<string, string>; sriov: boolean }[] = [];
  if (vifS !== undefined) for (const v of xlStrings(file, vifS)) entries.push({ line: v.line, kv: parseVif(file, v.line, v.text), sriov: false });
  if (pciS !== undefined) {
    for (const p of xlStrings(file, pciS)) {
      const [bdf, ...rest] = p.text.split(',');
      if (!/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(bdf!.trim()))
        throw new XlConfigError(file, p.line, `pci: "${bdf}" is not a PCI address [DDDD:]BB:DD.F`);
      const kv: Record<string, string> = {};
      for (const r of rest) {
        const eq = r.indexOf('=');
        if (eq > 0) kv[r.slice(0, eq).trim()] = r.slice(eq + 1).trim();
      }
      entries.push({ line: p.line, kv: { ...kv, vf: bdf!.trim().toLowerCase() }, sriov: true });
    }
  }
  entries.forEach((e, i) => {
    const override = opts.paths?.[i];
    const path =
      override ??
      (e.sriov ? 'sriov' : g.type === 'pv' || e.kv.type === 'vif' ? 'pv' : e.kv.model !== undefined || e.kv.type === 'ioemu' ? 'emulated' : 'pv');
    if (e.kv.mac === undefined)
      throw new XlConfigError(file, e.line, `${e.sriov ? 'pci' : 'vif'} ${i}: mac= is required here (the model does not invent addresses)`);
    if (e.kv.ip === undefined)
      throw new XlConfigError(file, e.line, `${e.sriov ? 'pci' : 'vif'} ${i}: ip= is required here (the guest's address on that NIC)`);
    const ip = e.kv.ip.split(/\s+/)[0]!;
    const nic: NicInput = { path, mac: e.kv.mac.toLowerCase(), ip: ip.includes('/') ? ip : `${ip}/${prefix}` };
    if (e.kv.bridge !== undefined) nic.bridge = e.kv.bridge;
    // The VF the pci entry names (its BDF) is the one the sriov path gives the guest.
    if (e.sriov && path === 'sriov') nic.options = { vf: e.kv.vf! };
    nics.push(nic);
  });
  if (opts.paths !== undefined && opts.paths.length > entries.length)
    throw new XlConfigError(file, 1, `paths names ${opts.paths.length} NICs but the file has ${entries.length} vif/pci entries`);
  g.nics = nics;
  return g;
}
