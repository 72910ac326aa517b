// A stable bucket for a name: the same on every Worker and object, so that anyone can tell which throttle,
// directory, balancer slice or relay a name belongs to without asking.

/** FNV-1a over UTF-16 code units: a stable, well-spread bucket for a string (not a security boundary). */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
