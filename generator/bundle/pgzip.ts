// Parallel gzip, pigz-style: the input is cut into fixed-size chunks at fixed offsets, each chunk
// becomes an independent gzip member compressed on libuv's threadpool (zlib's async API), and the
// members are written in input order. A concatenation of gzip members is a valid gzip file (RFC
// 1952 §2.2; gunzip, tar -z and Node's zlib read it whole). Chunk boundaries depend only on byte
// offsets and each member has Node's fixed header (no name, mtime 0, OS 3), so the output is
// deterministic whatever the timing. Memory: at most `concurrency` chunks in and out.

import { gzip } from 'node:zlib';

export interface ByteSink {
  write(b: Uint8Array): Promise<void>;
}

export interface PgzipOptions {
  /** Bytes of input per gzip member (default 1 MiB). */
  chunkSize?: number;
  /** zlib level (default 6, as gzip and pigz). */
  level?: number;
  /** Members compressed at once (default 4). */
  concurrency?: number;
}

const gzipAsync = (b: Uint8Array, level: number) =>
  new Promise<Uint8Array>((resolve, reject) => gzip(b, { level }, (e, r) => (e ? reject(e) : resolve(new Uint8Array(r.buffer, r.byteOffset, r.byteLength)))));

export class ParallelGzip {
  private buf: Uint8Array;
  private fill = 0;
  private inflight: Promise<Uint8Array>[] = [];
  private readonly chunkSize: number;
  private readonly level: number;
  private readonly concurrency: number;
  /** Compressed bytes written so far. */
  written = 0;
  members = 0;

  constructor(private sink: ByteSink, opts: PgzipOptions = {}) {
    this.chunkSize = opts.chunkSize ?? 1 << 20;
    this.level = opts.level ?? 6;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
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

  private async dispatch(): Promise<void> {
    const chunk = this.buf.subarray(0, this.fill);
    this.buf = new Uint8Array(this.chunkSize);
    this.fill = 0;
    const p = gzipAsync(chunk, this.level);
    // Keep rejections from surfacing as unhandled before they are awaited in order.
    p.catch(() => undefined);
    this.inflight.push(p);
    while (this.inflight.length >= this.concurrency) await this.flushOne();
  }

  private async flushOne(): Promise<void> {
    const out = await this.inflight.shift()!;
    this.members++;
    this.written += out.length;
    await this.sink.write(out);
  }

  /** Compresses the rest and waits until every member is written. */
  async end(): Promise<void> {
    if (this.fill > 0 || this.members + this.inflight.length === 0) await this.dispatch();
    while (this.inflight.length) await this.flushOne();
  }
}
