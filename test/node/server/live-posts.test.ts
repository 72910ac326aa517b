// The room's in-memory list of stored messages (durable-objects/group/live-posts.ts): what a cursor steps
// over, and what a member past a point is still owed, in items and bytes.

import { describe, expect, it } from "vitest";
import { LivePosts } from "../../../durable-objects/group/live-posts.js";

describe("LivePosts", () => {
  it("finds the next message after any seq, gaps included", () => {
    const posts = new LivePosts([
      { seq: 2, bytes: 10 },
      { seq: 5, bytes: 20 },
      { seq: 6, bytes: 30 },
    ]);
    expect([0, 1, 2, 3, 5, 6, 9].map((seq) => posts.after(seq))).toEqual([
      2,
      2,
      5,
      5,
      6,
      undefined,
      undefined,
    ]);
    expect(posts.last()).toBe(6);
    expect(new LivePosts().last()).toBe(0);
  });

  it("counts what comes after a seq, and keeps counting right after the front leaves", () => {
    const posts = new LivePosts([
      { seq: 1, bytes: 10 },
      { seq: 2, bytes: 20 },
    ]);
    posts.add(4, 40);
    expect(posts.usageAfter(0)).toEqual({ items: 3, bytes: 70 });
    expect(posts.usageAfter(1)).toEqual({ items: 2, bytes: 60 });
    expect(posts.usageAfter(3)).toEqual({ items: 1, bytes: 40 });
    expect(posts.usageAfter(4)).toEqual({ items: 0, bytes: 0 });
    expect(posts.dropThrough(0)).toBe(false);
    expect(posts.dropThrough(2)).toBe(true);
    expect(posts.size).toBe(1);
    expect(posts.usageAfter(0)).toEqual({ items: 1, bytes: 40 });
    posts.add(7, 5);
    expect(posts.usageAfter(4)).toEqual({ items: 1, bytes: 5 });
    expect(posts.dropThrough(9)).toBe(true);
    expect(posts.size).toBe(0);
    expect(posts.usageAfter(0)).toEqual({ items: 0, bytes: 0 });
    posts.add(8, 3);
    expect(posts.usageAfter(0)).toEqual({ items: 1, bytes: 3 });
  });
});
