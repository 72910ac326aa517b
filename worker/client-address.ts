// The client address a request is counted under: CF-Connecting-IP as Cloudflare sets it, IPv4 whole and
// IPv6 by its /64 (one customer's network), and one shared bucket when the header is missing or invalid.
//
// On Cloudflare the edge sets CF-Connecting-IP to the address that connected and replaces any value a
// client sent. Under `wrangler dev` the local runtime sets it only when the client did not, so locally
// it is whatever the client says: a test rotating it is many clients, which is the point of the header.

/** Where requests without a usable address are counted: together, so leaving the header out buys nothing. */
export const SHARED_ADDRESS_BUCKET = "unknown";

/** The rate-limit key for a CF-Connecting-IP value (absent or invalid: the shared bucket). */
export function addressBucket(header: string | null | undefined): string {
  const value = header?.trim() ?? "";
  if (value.length === 0 || value.length > 64) return SHARED_ADDRESS_BUCKET;
  const v4 = ipv4(value);
  if (v4 !== null) return v4;
  const groups = ipv6Groups(value);
  if (groups === null) return SHARED_ADDRESS_BUCKET;
  // An IPv4 address written as IPv6 (::ffff:a.b.c.d) is that IPv4 address, not a /64 of its own.
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join(".");
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(":")}::/64`;
}

function ipv4(value: string): string | null {
  const parts = value.split(".");
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    octets.push(octet);
  }
  return octets.join(".");
}

/** The eight 16-bit groups of an IPv6 address (with "::" and an embedded IPv4 tail), or null. */
function ipv6Groups(value: string): number[] | null {
  let text = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  // A zone ("%eth0") names an interface on the client's side; it says nothing about the network.
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (half: string): number[] | null => {
    if (half === "") return [];
    const groups: number[] = [];
    const pieces = half.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = ipv4(piece);
        if (v4 === null) return null;
        const [a, b, c, d] = v4.split(".").map(Number) as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        groups.push(Number.parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...Array<number>(missing).fill(0), ...tail];
}
