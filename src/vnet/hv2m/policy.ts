/** Who a policy rule is about: a guest by name, or every guest of a tenant label. */
export type Hv2mSelector = { name: string } | { tenant: string } | '*';

/** One rule: the pair (a, b), in either order, is allowed or denied a channel. */
export interface Hv2mRule {
  action: 'allow' | 'deny';
  a: Hv2mSelector;
  b: Hv2mSelector;
}

/**
 * Dom0's HV²M policy (DESIGN.md, *ours*): which guest pairs may have a channel. Rules are
 * tried in order, the first that matches the pair decides; with none matching, `default`
 * decides — `same-tenant` (the default) allows a pair only when both carry the same tenant
 * label the toolstack keeps.
 */
export interface Hv2mPolicy {
  default?: 'same-tenant' | 'allow' | 'deny';
  rules?: readonly Hv2mRule[];
}

/** What the policy knows of a guest: Dom0's own records, never anything the guest wrote. */
export interface PolicySubject {
  name: string;
  tenant: string;
}

function matches(s: Hv2mSelector, g: PolicySubject): boolean {
  if (s === '*') return true;
  return 'name' in s ? s.name === g.name : s.tenant === g.tenant;
}

/** Whether `x` and `y` may have a channel under `p`. */
export function pairAllowed(p: Hv2mPolicy, x: PolicySubject, y: PolicySubject): boolean {
  for (const r of p.rules ?? []) {
    if ((matches(r.a, x) && matches(r.b, y)) || (matches(r.a, y) && matches(r.b, x))) return r.action === 'allow';
  }
  const d = p.default ?? 'same-tenant';
  return d === 'allow' ? true : d === 'deny' ? false : x.tenant === y.tenant;
}

/** A policy from a description (host file or scenario): unknown keys and bad values are errors naming them. */
export function parseHv2mPolicy(o: unknown, where: string): Hv2mPolicy {
  const errs: string[] = [];
  const out: { default?: Hv2mPolicy['default']; rules: Hv2mRule[] } = { rules: [] };
  const sel = (v: unknown, at: string): Hv2mSelector | null => {
    if (v === '*') return '*';
    if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      const r = v as Record<string, unknown>;
      if (keys.length === 1 && keys[0] === 'name' && typeof r.name === 'string') return { name: r.name };
      if (keys.length === 1 && keys[0] === 'tenant' && typeof r.tenant === 'string') return { tenant: r.tenant };
    }
    errs.push(`${at}: expected '*', { name: <guest> } or { tenant: <label> }, got ${JSON.stringify(v)}`);
    return null;
  };
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new Error(`${where}: hv2m policy: expected an object with default and rules, got ${JSON.stringify(o)}`);
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (k === 'default') {
      if (v === 'same-tenant' || v === 'allow' || v === 'deny') out.default = v;
      else errs.push(`default: expected same-tenant, allow or deny, got ${JSON.stringify(v)}`);
    } else if (k === 'rules') {
      if (!Array.isArray(v)) {
        errs.push('rules: expected a list');
        continue;
      }
      v.forEach((r: unknown, i) => {
        const rr = (r ?? {}) as Record<string, unknown>;
        if (rr.action !== 'allow' && rr.action !== 'deny') errs.push(`rules.${i}.action: expected allow or deny, got ${JSON.stringify(rr.action)}`);
        const a = sel(rr.a, `rules.${i}.a`);
        const b = sel(rr.b, `rules.${i}.b`);
        if ((rr.action === 'allow' || rr.action === 'deny') && a !== null && b !== null) out.rules.push({ action: rr.action, a, b });
      });
    } else errs.push(`${k}: not a field of an hv2m policy (default, rules)`);
  }
  if (errs.length > 0) throw new Error(`${where}: invalid hv2m policy:\n${errs.map((e) => `  - ${e}`).join('\n')}`);
  return out.default === undefined ? { rules: out.rules } : { default: out.default, rules: out.rules };
}
