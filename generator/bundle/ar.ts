// The Unix `ar` archive format that .deb files use (deb(5)): "!<arch>\n", then members, each a
// 60-byte header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n") and its data padded to
// an even offset. ArParser is push-based so a package can be parsed while it streams through the
// hashes and the tar, without holding it in memory: it keeps only the members a caller asks for.

const MAGIC = '!<arch>\n';
const HEADER = 60;

export interface ArMember {
  name: string;
  size: number;
  /** Offset of the member's data in the archive. */
  offset: number;
}

export class ArError extends Error {}

/**
 * Feed it the archive's bytes in order; it reports each member and collects the data of members
 * for which `keep(name, size)` returns true. `end()` checks the archive was complete.
 */
export class ArParser {
  private pos = 0;
  private head: Uint8Array = new Uint8Array(0);
  private state: 'magic' | 'header' | 'data' | 'pad' = 'magic';
  private current?: ArMember;
  private remaining = 0;
  private parts: Uint8Array[] = [];
  private keeping = false;
  readonly members: ArMember[] = [];
  readonly kept = new Map<string, Uint8Array>();

  constructor(private keep: (name: string, size: number) => boolean = () => false) {}

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'magic' || this.state === 'header') {
        const want = this.state === 'magic' ? MAGIC.length : HEADER;
        const take = Math.min(want - this.head.length, chunk.length - i);
        this.head = concat([this.head, chunk.subarray(i, i + take)]);
        i += take;
        this.pos += take;
        if (this.head.length < want) continue;
        const text = latin1(this.head);
        this.head = new Uint8Array(0);
        if (this.state === 'magic') {
          if (text !== MAGIC) throw new ArError('not an ar archive (bad magic)');
          this.state = 'header';
        } else this.header(text);
      } else if (this.state === 'data') {
        const take = Math.min(this.remaining, chunk.length - i);
        if (this.keeping) this.parts.push(chunk.slice(i, i + take));
        i += take;
        this.pos += take;
        this.remaining -= take;
        if (this.remaining === 0) this.endMember();
      } else {
        // One padding byte ("\n") after odd-sized data.
        i += 1;
        this.pos += 1;
        this.state = 'header';
      }
    }
  }

  private header(h: string): void {
    if (h.slice(58, 60) !== '`\n') throw new ArError(`bad member header at offset ${this.pos - HEADER}`);
    let name = h.slice(0, 16).trimEnd();
    // GNU ar ends names with '/'; dpkg-deb writes them without.
    if (name.endsWith('/') && name !== '/' && name !== '//') name = name.slice(0, -1);
    const sizeText = h.slice(48, 58).trim();
    if (!/^\d+$/.test(sizeText)) throw new ArError(`bad size '${sizeText}' for member '${name}'`);
    const size = Number(sizeText);
    this.current = { name, size, offset: this.pos };
    this.members.push(this.current);
    this.remaining = size;
    this.keeping = this.keep(name, size);
    this.parts = [];
    if (size === 0) this.endMember();
    else this.state = 'data';
  }

  private endMember(): void {
    const m = this.current!;
    if (this.keeping) this.kept.set(m.name, concat(this.parts));
    this.parts = [];
    this.keeping = false;
    this.state = m.size % 2 === 1 ? 'pad' : 'header';
  }

  /** Throws unless the archive ended on a member boundary. */
  end(): void {
    if (this.state === 'magic') throw new ArError(this.head.length ? 'not an ar archive (truncated magic)' : 'empty file');
    if (this.state === 'data') throw new ArError(`truncated archive (inside member '${this.current!.name}')`);
    if (this.head.length) throw new ArError(`truncated archive (inside the header of member ${this.members.length + 1})`);
  }
}

/** Parses a whole archive in memory (for tests and small files). */
export function readAr(bytes: Uint8Array, keep: (name: string) => boolean = () => true): { members: ArMember[]; data: Map<string, Uint8Array> } {
  const p = new ArParser(keep);
  p.push(bytes);
  p.end();
  return { members: p.members, data: p.kept };
}

/** Builds an ar archive (tests, and any tool that needs a .deb without dpkg-deb). */
export function writeAr(members: { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [new TextEncoder().encode(MAGIC)];
  for (const m of members) {
    const h = `${m.name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(m.data.length).padEnd(10)}\`\n`;
    parts.push(new TextEncoder().encode(h), m.data);
    if (m.data.length % 2) parts.push(new Uint8Array([10]));
  }
  return concat(parts);
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
