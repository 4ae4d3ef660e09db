import type { XsErrorName } from '../abi/xs-wire.js';

/**
 * Outcome of a XenStore operation: a value, or the Xen error a client would receive
 * (xen-abi.md §1.3). Client mistakes come back as errors; exceptions mean a bug in the model.
 */
export type XsResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: XsErrorName };

export const OK_VOID: XsResult<void> = { ok: true, value: undefined };

export function ok<T>(value: T): XsResult<T> {
  return { ok: true, value };
}

export function fail<T = never>(error: XsErrorName): XsResult<T> {
  return { ok: false, error };
}
