// What decides whether a baked image can be reused: its bake key. The content hash names what the
// inventory puts into an image (files, packages by name, users, links); the bake key adds what the
// bake makes of it: the packages' bytes (the --bundle's manifest hash), the base it starts from
// (the source AMI, the qemu cloud image, the local bake's debootstrap suite and mirror) and
// pigen's own Packer templates and scripts. A change to any of them bakes the image again; the
// same key reuses it (an AMI tagged pigen:bake-key, a local or qemu artifact with its stamp).
// Pure: inputs in, a hex string out.

import { sha256 } from '../util/hash.js';

export interface BakeInputs {
  /** The image's content hash. */
  content: string;
  target: 'local' | 'aws' | 'qemu';
  /** The base: source AMI id, qemu image URL and checksum, or debootstrap suite, mirror and packages. */
  source: string;
  /** The --bundle's manifest sha256 the packages come from; null: the source's own repos. */
  bundle: string | null;
  /** bakeFilesDigest() of images/. */
  scripts: string;
}

/** The bake key (sha256, hex) of an image's bake. */
export function bakeKey(i: BakeInputs): string {
  return sha256(JSON.stringify([i.content, i.target, i.source, i.bundle, i.scripts]));
}

/** One digest of the Packer templates and scripts (path and bytes of each, in path order). */
export function bakeFilesDigest(files: { path: string; data: Uint8Array }[]): string {
  const parts = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => `${f.path}\0${sha256(f.data)}`);
  return sha256(parts.join('\n'));
}

/** The stamp beside a local or qemu artifact: the bake key it was baked with. */
export const stampOf = (artifact: string) => `${artifact}.bake-key`;
