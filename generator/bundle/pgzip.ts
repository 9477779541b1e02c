// Parallel gzip, pigz-style: the input is cut into fixed-size chunks at fixed offsets, each chunk
// becomes an independent gzip member compressed on libuv's threadpool (zlib's async API), and the
// members are written in input order. A concatenation of gzip members is a valid gzip file (RFC
// 1952 §2.2; gunzip, tar -z and Node's zlib read it whole).
//
// Incompressible chunks (random bytes, or the xz/zstd/gzip-compressed members inside real .deb
// and .rpm files) are stored (zlib level 0) instead of deflated: deflate at any level gains nothing
// on them and is the slowest part of the job (~50 MB/s a core on random bytes, against ~700 MB/s
// to store). The decision is `memberLevel()`, a pure function of the chunk's bytes (a byte-entropy
// estimate and a repeated-string check on fixed samples of it).
//
// Reproducible: chunk boundaries depend only on byte offsets, each member's level only on its
// bytes, and each member has Node's fixed header (no name, mtime 0, OS 3), so the output is the same
// whatever the timing, the concurrency or the number of CPUs. Memory: at most `concurrency + 3`
// members in flight (each its input chunk, then its output), and the chunk being filled.

import { gzip } from 'node:zlib';

export interface ByteSink {
  write(b: Uint8Array): Promise<void>;
}

export interface PgzipOptions {
  /** Bytes of input per gzip member (default 1 MiB). */
  chunkSize?: number;
  /** zlib level (default 6, as gzip and pigz). */
  level?: number;
  /**
   * CPUs to keep busy compressing (default 4). One member more than this is on the threadpool at
   * any time, so a thread that finishes never waits for the main thread to hand it the next one.
   */
  concurrency?: number;
  /** Store the chunks `memberLevel` finds incompressible (default true). */
  adaptive?: boolean;
}

// ── the store decision ───────────────────────────────────────────────────────────────────────

/** Chunks shorter than this are always deflated (the index files, the last chunk's tail). */
const MIN_SAMPLED = 64 << 10;
/** The sample: SAMPLES windows of WINDOW bytes at fixed, evenly spaced offsets. */
const WINDOW = 16 << 10;
const SAMPLES = 4;
/** Order-0 entropy (bits per byte) above which the bytes look random... */
const ENTROPY_MIN = 7.9;
/** ...unless at least one sampled position in this many starts a 4-byte string seen shortly before. */
const REPEAT_RATIO = 64;

const log2 = new Float64Array(WINDOW * SAMPLES + 1);
for (let i = 1; i < log2.length; i++) log2[i] = Math.log2(i);
const counts = new Uint32Array(256);
/** 4-byte strings by hash (a collision with the fill value only ever counts as a repeat). */
const table = new Int32Array(1 << 15);

/**
 * Whether a chunk looks incompressible: the byte entropy of the sample is near 8 bits and the
 * sample has (almost) no repeated 4-byte strings within a window, i.e. deflate would find neither
 * a skewed byte distribution nor matches. A pure function of the bytes. It costs ~0.2 ms a MiB
 * (0.4 ms when the entropy is high) on the main thread. Blind spot: random bytes that repeat at
 * distances of 16 to 32 KiB (deflate's window) are stored, where deflate would have shrunk them.
 * On real .deb files (400 MiB of Debian 12 packages) every chunk is stored and the output is no
 * larger than deflating them all at level 6.
 */
export function looksIncompressible(b: Uint8Array): boolean {
  if (b.length < MIN_SAMPLED) return false;
  const n = Math.min(SAMPLES, Math.floor(b.length / WINDOW));
  const step = n > 1 ? Math.floor((b.length - WINDOW) / (n - 1)) : 0;
  counts.fill(0);
  for (let w = 0; w < n; w++) {
    const end = w * step + WINDOW;
    for (let i = w * step; i < end; i++) counts[b[i]!]!++;
  }
  const total = n * WINDOW;
  let sum = 0;
  for (let s = 0; s < 256; s++) sum += counts[s]! * log2[counts[s]!]!;
  const entropy = log2[total]! - sum / total;
  if (entropy < ENTROPY_MIN) return false;
  // Repeated strings (what deflate's matches exploit): each 4-byte string of a window is looked up
  // in a small hash table of the strings before it in that window.
  let repeats = 0;
  for (let w = 0; w < n; w++) {
    table.fill(-1);
    const start = w * step;
    const end = start + WINDOW;
    let v = (b[start]! << 8) | (b[start + 1]! << 16) | (b[start + 2]! << 24);
    for (let i = start + 3; i < end; i++) {
      v = (v >>> 8) | (b[i]! << 24);
      const h = Math.imul(v, 0x9e3779b1) >>> 17;
      if (table[h] === v) repeats++;
      table[h] = v;
    }
  }
  return repeats * REPEAT_RATIO <= total;
}

/** The zlib level of one member: 0 (stored) when the chunk looks incompressible, else `level`. */
export function memberLevel(chunk: Uint8Array, level: number, adaptive = true): number {
  return adaptive && level > 0 && looksIncompressible(chunk) ? 0 : level;
}

// ── the pipeline ─────────────────────────────────────────────────────────────────────────────

/**
 * One member, compressed on the threadpool in (nearly always) one pass: zlib's output buffer is as
 * large as a stored member, or half the input for a deflated one (what it shrinks to unless it is
 * close to incompressible; a larger output takes a second pass), so the work is not cut into zlib's
 * default 16 KiB round trips through the main thread.
 */
const gzipMember = (b: Uint8Array, level: number) =>
  new Promise<Uint8Array>((resolve, reject) =>
    gzip(b, { level, chunkSize: Math.max(64 << 10, (level === 0 ? b.length + (b.length >> 8) : b.length >> 1) + 1024) }, (e, r) =>
      e ? reject(e) : resolve(new Uint8Array(r.buffer, r.byteOffset, r.byteLength)),
    ),
  );

export class ParallelGzip {
  private buf: Uint8Array;
  private fill = 0;
  private readonly chunkSize: number;
  private readonly level: number;
  /** Members on the threadpool at once: `concurrency + 1`. */
  private readonly slots: number;
  private readonly adaptive: boolean;
  /** Members on the threadpool, and the ones waiting for a slot there (in order). */
  private running = 0;
  private waiting: (() => void)[] = [];
  /** Members dispatched but not yet written; the writes, chained in order. */
  private outstanding = 0;
  private writes: Promise<void> = Promise.resolve();
  private wake?: () => void;
  private error: { e: unknown } | undefined;
  /** Chunk buffers zlib is done with, reused. */
  private pool: Uint8Array[] = [];
  /** Compressed bytes written so far. */
  written = 0;
  members = 0;
  /** Members stored (level 0) because their input looked incompressible. */
  stored = 0;

  constructor(private sink: ByteSink, opts: PgzipOptions = {}) {
    this.chunkSize = opts.chunkSize ?? 1 << 20;
    this.level = opts.level ?? 6;
    this.slots = Math.max(1, opts.concurrency ?? 4) + 1;
    this.adaptive = opts.adaptive ?? true;
    this.buf = new Uint8Array(this.chunkSize);
  }

  async write(data: Uint8Array): Promise<void> {
    let i = 0;
    while (i < data.length) {
      const take = Math.min(this.chunkSize - this.fill, data.length - i);
      this.buf.set(data.subarray(i, i + take), this.fill);
      this.fill += take;
      i += take;
      if (this.fill === this.chunkSize) await this.dispatch();
    }
  }

  private async compress(chunk: Uint8Array, level: number): Promise<Uint8Array> {
    if (this.running < this.slots) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await gzipMember(chunk, level);
    } finally {
      // Hand the slot straight to the next member waiting for it, if any.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  private async dispatch(): Promise<void> {
    const full = this.buf;
    const chunk = full.subarray(0, this.fill);
    this.buf = this.pool.pop() ?? new Uint8Array(this.chunkSize);
    this.fill = 0;
    const level = memberLevel(chunk, this.level, this.adaptive);
    if (level === 0 && this.level !== 0) this.stored++;
    const job = this.compress(chunk, level);
    // Keep rejections from surfacing as unhandled before they are awaited in order.
    job.catch(() => undefined);
    this.outstanding++;
    this.writes = this.writes
      .then(async () => {
        if (this.error) return;
        const out = await job;
        // zlib is done with the input: its buffer takes the next chunk (no garbage to collect).
        this.pool.push(full);
        this.members++;
        this.written += out.length;
        await this.sink.write(out);
      })
      .catch((e: unknown) => {
        this.error ??= { e };
      })
      .finally(() => {
        this.outstanding--;
        const wake = this.wake;
        this.wake = undefined;
        wake?.();
      });
    // Back-pressure: a few members ready beyond those compressing, so a thread never waits for
    // the main thread to fill the next chunk; no more, so memory stays flat.
    while (this.outstanding >= this.slots + 2 && !this.error) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.error) throw this.error.e;
  }

  /** Compresses the rest and waits until every member is written. */
  async end(): Promise<void> {
    if (this.fill > 0 || this.members + this.outstanding === 0) await this.dispatch();
    await this.writes;
    if (this.error) throw this.error.e;
  }
}
