/**
 * A malformed or unacceptable packet, as a value: parsers return it instead of throwing
 * (STYLE.md habit 2). `layer` and `code` are stable, for counters and tests; `message`
 * names the problem for a person.
 */
export type WireErrorCode =
  | 'truncated'
  | 'badVersion'
  | 'badHeaderLength'
  | 'badTotalLength'
  | 'badChecksum'
  | 'badDataOffset'
  | 'badOption'
  | 'optionOverrun'
  | 'badLength'
  | 'unsupported'
  | 'badFragment';

export class WireError {
  constructor(
    readonly layer: 'ethernet' | 'arp' | 'ipv4' | 'icmp' | 'udp' | 'tcp',
    readonly code: WireErrorCode,
    readonly message: string,
  ) {}

  toString(): string {
    return `${this.layer}: ${this.message}`;
  }
}

export function isWireError(v: unknown): v is WireError {
  return v instanceof WireError;
}
