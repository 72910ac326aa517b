// Work over many items with a bound on how much is in flight: an object may hold only a few outgoing
// connections at once, and a room pushing one message to many shards must not take them all.

/** `work` for every item, at most `limit` at once, as each finishes the next starts; results in order. */
export async function eachAtMost<T, R>(
  limit: number,
  items: T[],
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
