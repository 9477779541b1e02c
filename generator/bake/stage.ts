// What `pigen bake` hands to Packer for one image: the image content as a small tree that
// images/scripts/apply-image.sh reads (plain files and tab-separated lists, so the script needs
// no JSON parser on the machine being baked). Pure: returns an OutTree.

import { imageJson, packerVars, type ImageSpec } from '../emit/images.js';
import { stableJson } from '../emit/index.js';
import type { OutEntry, OutTree } from '../types.js';

const enc = new TextEncoder();
const text = (path: string, s: string, mode = 0o644): OutEntry => ({ path, data: enc.encode(s), mode });
const lines = (xs: string[]) => (xs.length ? xs.join('\n') + '\n' : '');

/**
 * The content directory of one image; `build` maps build-output paths to their bytes. With
 * `seedKey` (an OpenSSH public key line), the NoCloud seed of a qemu bake: a throwaway user who
 * logs in with that key only.
 */
export function stageTree(img: ImageSpec, build: Map<string, Uint8Array>, version: string, seedKey?: string): OutTree {
  const out: OutEntry[] = [];
  const tsv: string[] = [];
  for (const f of img.files) {
    const data = build.get(f.from);
    if (!data) throw new Error(`internal: ${f.from} is not in the build output`);
    const physical = f.from.replace(/^nodes\/[^/]+\/rootfs/, '');
    out.push({ path: `files${physical}`, data, mode: parseInt(f.mode, 8) });
    tsv.push(`${f.mode}\t${f.owner}\t${physical}`);
  }
  out.push(text('files.tsv', lines(tsv)));
  out.push(text('links.tsv', lines(img.links.map((l) => `${l.path}\t${l.target}`))));
  out.push(text('groups.txt', lines(img.groups)));
  out.push(text('users.tsv', lines(img.users.map((u) => `${u.name}\t${u.groups.join(',')}\t${u.home}`))));
  out.push(text('packages.txt', lines(img.packages)));
  if (img.repoRemove) out.push(text('repo-remove', ''));
  if (img.repo) out.push(text('repo-install', ''));
  out.push(text('image.json', stableJson(imageJson(img)) + '\n'));
  out.push(text('image.pkrvars.hcl', packerVars(img, version)));
  // NoCloud seed for the qemu bake: a throwaway user Packer logs in as with the bake's own key (no
  // password; removed by the shutdown command, images/sources.pkr.hcl).
  if (seedKey !== undefined) {
    if (!/^[a-z0-9-]+ [A-Za-z0-9+/=]+( [A-Za-z0-9@._-]+)?$/.test(seedKey)) throw new Error('internal: the bake key is no OpenSSH public key line');
    out.push(text('seed/meta-data', `instance-id: ${img.name}-bake\nlocal-hostname: pigen-bake\n`));
    out.push(
      text(
        'seed/user-data',
        `#cloud-config\nusers:\n  - name: pigen\n    lock_passwd: true\n    ssh_authorized_keys: [${JSON.stringify(seedKey)}]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/sh\n`,
      ),
    );
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
