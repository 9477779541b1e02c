// Progress of a long bundle build on stderr: on a TTY one redrawn bar (bytes, files, rate, ETA);
// otherwise a plain line every `interval` ms (logs and CI stay readable).

import type { Progress } from './build.js';

export interface ProgressSink {
  write(s: string): void;
  isTTY: boolean;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(x < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

export class ProgressReporter {
  private start: number;
  private last = -Infinity;
  private drawn = false;

  constructor(
    private out: ProgressSink,
    // (The clock comes from the caller, the CLI: no stage reads it.)
    private opts: { now: () => number; interval?: number; width?: number; label?: string },
  ) {
    this.start = this.now();
    // Plain lines start after one interval: a quick build prints none.
    if (!out.isTTY) this.last = this.start;
  }

  private now(): number {
    return this.opts.now();
  }

  /** The status text for a progress state at `elapsed` seconds. */
  static text(p: Progress, elapsed: number): { pct: number; line: string } {
    const pct = p.totalBytes ? p.bytes / p.totalBytes : p.totalFiles ? p.files / p.totalFiles : 1;
    const rate = elapsed > 0 ? p.bytes / elapsed : 0;
    const eta = rate > 0 ? (p.totalBytes - p.bytes) / rate : Infinity;
    const line = `${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}  ${p.files}/${p.totalFiles} files  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`;
    return { pct, line };
  }

  update(p: Progress): void {
    const t = this.now();
    const interval = this.opts.interval ?? (this.out.isTTY ? 100 : 2000);
    if (t - this.last < interval) return;
    this.last = t;
    const { pct, line } = ProgressReporter.text(p, (t - this.start) / 1000);
    const label = this.opts.label ?? 'bundle';
    if (this.out.isTTY) {
      const w = this.opts.width ?? 24;
      const fill = Math.min(w, Math.floor(pct * w));
      this.out.write(`\r\x1b[K${label} [${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${(pct * 100).toFixed(0).padStart(3)}%  ${line}`);
      this.drawn = true;
    } else {
      this.out.write(`${label}: ${(pct * 100).toFixed(0)}%  ${line}\n`);
    }
  }

  /** Clears the bar (TTY) so the summary line starts clean. */
  done(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}
