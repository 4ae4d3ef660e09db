import { inSubnet, type Ipv4Addr } from '../wire/addr.js';

/** One route: destinations in `dest`/`prefix` leave by `iface`, to `gateway` or directly. */
export interface Route<I> {
  dest: Ipv4Addr;
  prefix: number;
  /** Next hop; undefined for a connected subnet (the destination is the next hop). */
  gateway?: Ipv4Addr;
  iface: I;
}

/** Longest-prefix match over a short list (a guest has a handful of routes). */
export class RouteTable<I> {
  private routes: Route<I>[] = [];

  add(r: Route<I>): void {
    if (!Number.isInteger(r.prefix) || r.prefix < 0 || r.prefix > 32) throw new RangeError(`route prefix /${r.prefix} is not 0..32`);
    this.routes.push(r);
    this.routes.sort((x, y) => y.prefix - x.prefix);
  }

  remove(pred: (r: Route<I>) => boolean): void {
    this.routes = this.routes.filter((r) => !pred(r));
  }

  lookup(dst: Ipv4Addr): { iface: I; nextHop: Ipv4Addr } | undefined {
    for (const r of this.routes) {
      if (inSubnet(dst, r.dest, r.prefix)) return { iface: r.iface, nextHop: r.gateway ?? dst };
    }
    return undefined;
  }

  list(): readonly Route<I>[] {
    return this.routes;
  }
}
