// A shard keeps each socket's connection in its attachment and a copy in memory (durable-objects/shard/
// connection.ts). Tested with fake sockets whose attachment is a structured clone, as the runtime's is,
// and which count how often it is read: the copy must spare the reads, and must never be believed once
// the runtime hands out another object for the same socket.

import { describe, expect, it } from "vitest";
import { type Connection, connectionOf, setConnection } from "../../durable-objects/shard/connection.js";

/** The socket as the runtime keeps it; `object()` is one JavaScript object for it. */
function fakeSocket() {
  let attachment: unknown = null;
  let reads = 0;
  const object = () =>
    ({
      serializeAttachment: (value: unknown) => {
        attachment = structuredClone(value);
      },
      deserializeAttachment: () => {
        reads++;
        return structuredClone(attachment);
      },
    }) as unknown as WebSocket;
  return { object, reads: () => reads, write: (value: unknown) => (attachment = structuredClone(value)) };
}

function connection(id: string, overrides: Partial<Connection> = {}): Connection {
  return {
    id,
    user: "alice",
    session: "s1",
    shard: "shard:enam:0:0",
    receive: true,
    expiresAt: 0,
    draining: [],
    backlogCursor: 0,
    ...overrides,
  };
}

describe("a socket's connection", () => {
  it("is read from the attachment once, then from memory, and every write reaches both", () => {
    const socket = fakeSocket();
    const ws = socket.object();
    socket.write(connection("c1"));
    expect(connectionOf(ws)).toEqual(connection("c1"));
    expect(connectionOf(ws)?.id).toBe("c1");
    expect(socket.reads()).toBe(1);

    setConnection(ws, connection("c1", { backlogCursor: 7 }));
    expect(connectionOf(ws)?.backlogCursor).toBe(7);
    expect(socket.reads()).toBe(1);
    // What survives hibernation is the attachment: it has the write too.
    expect((socket.object().deserializeAttachment() as Connection).backlogCursor).toBe(7);
  });

  it("is read again through an object that did not write it last: a copy under an older object is stale", () => {
    const socket = fakeSocket();
    const before = socket.object();
    setConnection(before, connection("c2", { draining: ["", "team"] }));
    // After hibernation the runtime hands out a new object for the same socket, which writes.
    const after = socket.object();
    expect(connectionOf(after)?.draining).toEqual(["", "team"]);
    setConnection(after, connection("c2", { draining: [] }));
    const reads = socket.reads();
    expect(connectionOf(before)?.draining).toEqual([]);
    expect(socket.reads()).toBe(reads + 1);
  });

  it("stays null once counted out", () => {
    const socket = fakeSocket();
    const ws = socket.object();
    setConnection(ws, connection("c3"));
    setConnection(ws, null);
    expect(connectionOf(ws)).toBeNull();
    expect(socket.object().deserializeAttachment()).toBeNull();
  });
});
