// nginx configuration text split as nginx itself reads it (ngx_conf_read_token): a token starts a
// comment (`#`) or a quoted string only at its first character; inside a word, `#`, quotes and `}`
// are ordinary characters, `\` escapes the next one, and `${` (an unescaped `$`) opens a variable, not a block. A word
// ends at whitespace, `;` or `{`. Used by the rule that keeps raw `config` blocks inside their
// server block, and by pigen check's copy of a node's configuration.

export interface NginxToken {
  /** The source text of the token. */
  text: string;
  /** The word as nginx reads it (quotes removed, escapes resolved); null for ; { }. */
  value: string | null;
  start: number;
  end: number;
}

/** The tokens of `text`; throws on a quoted string left open. */
export function nginxTokens(text: string): NginxToken[] {
  const out: NginxToken[] = [];
  const space = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (space(c)) i++;
    else if (c === '#') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
    } else if (c === ';' || c === '{' || c === '}') {
      out.push({ text: c, value: null, start: i, end: i + 1 });
      i++;
    } else if (c === '"' || c === "'") {
      const start = i++;
      let v = '';
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        v += text[i++];
      }
      if (i >= text.length) throw new Error(`unterminated ${c} string at offset ${start}`);
      i++;
      out.push({ text: text.slice(start, i), value: v, start, end: i });
    } else {
      const start = i;
      let v = '';
      // After an unescaped `$`, `{` belongs to the word (nginx keeps that state through further
      // `{`); an escaped `\$` is no variable, so a `{` after it opens a block.
      let variable = false;
      while (i < text.length) {
        const d = text[i]!;
        if (space(d) || d === ';' || (d === '{' && !variable)) break;
        if (d !== '{') variable = d === '$';
        if (d === '\\' && i + 1 < text.length) v += text[++i];
        else v += d;
        i++;
      }
      out.push({ text: text.slice(start, i), value: v, start, end: i });
    }
  }
  return out;
}

/**
 * Whether raw directives keep to the block they are put in: every block they open is closed, none
 * closes an enclosing one, no quoted string is left open.
 */
export function balancedNginx(config: string): boolean {
  let depth = 0;
  try {
    for (const t of nginxTokens(config)) {
      if (t.value !== null) continue;
      if (t.text === '{') depth++;
      else if (t.text === '}' && --depth < 0) return false;
    }
  } catch {
    return false;
  }
  return depth === 0;
}
