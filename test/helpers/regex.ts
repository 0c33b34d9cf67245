// Long expected patterns, written as several regex literals on their own lines.

/**
 * One RegExp matching what the parts would match written as a single literal: their sources joined in order, with the
 * flags of all parts. Split a pattern only between its top-level pieces, so each part is a valid regex of its own.
 */
export function joinedRegex(...parts: readonly RegExp[]): RegExp {
  const flags = new Set(parts.flatMap((p) => [...p.flags]));
  return new RegExp(parts.map((p) => p.source).join(''), [...flags].join(''));
}
