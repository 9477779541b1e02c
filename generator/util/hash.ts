// The content hash used throughout the output (manifest, tree entries, template identities).

import { createHash } from 'node:crypto';

/** sha256 of bytes or a string (UTF-8), lowercase hex. */
export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
