// Connection against a local ws stub: the handshake (token, receive=0, refusals), deliveries and synced,
// upload/answer correlation, ack batching, keep-alive, and failures surfacing as typed errors.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Connection, type ConnectionOptions } from "../../../client/net/connection.js";
import { nodePlatform } from "../../../cli-client/platform/index.js";
import { concatBytes } from "../../../protocol/bytes.js";
import { encodeDelivery, encodeSignedPart } from "../../../protocol/envelope.js";
import {
  AuthError,
  type CliError,
  NetworkError,
  NotFoundError,
  RateLimitedError,
  RefusedError,
} from "../../../client/errors.js";
import { type StubServer, type StubSocket, sendWelcome, startStubServer, until } from "./helpers.js";

const ID_A = "a".repeat(32);
const ID_B = "b".repeat(32);
const ID_C = "c".repeat(32);

let server: StubServer;
const open: Connection[] = [];

beforeEach(async () => {
  server = await startStubServer();
});

afterEach(async () => {
  for (const connection of open.splice(0)) await connection.close();
  await server.close();
});

async function connect(options: Partial<ConnectionOptions> = {}): Promise<Connection> {
  const connection = await Connection.open({
    net: nodePlatform(),
    server: server.url,
    token: "tok",
    receive: true,
    ...options,
  });
  open.push(connection);
  return connection;
}

function welcomeOnConnect(then?: (socket: StubSocket) => void): void {
  server.onSocket = (socket) => {
    sendWelcome(socket.ws);
    then?.(socket);
  };
}

/** A delivery of a group message (stand-in bytes where the crypto goes): only its header matters here. */
function groupDelivery(group: string, id: string): Uint8Array {
  const signed = encodeSignedPart({
    kind: "group",
    messageId: Buffer.from(id, "hex"),
    sentAt: 0,
    counter: 1,
    sender: "alice",
    target: group,
    epoch: 1,
    membersDigest: new Uint8Array(32),
    keyCommitment: new Uint8Array(32),
    nonce: new Uint8Array(24),
    ciphertext: new Uint8Array(32),
  });
  return encodeDelivery(concatBytes(signed, new Uint8Array(64)), new Uint8Array(8));
}

function idFrame(id: string): Uint8Array {
  return Uint8Array.from([0x01, ...Buffer.from(id, "hex")]);
}

describe("opening", () => {
  it("sends the bearer token, asks for receive=0 on send-only sockets, and waits for welcome", async () => {
    let welcomed = false;
    server.onSocket = (socket) =>
      setTimeout(() => {
        welcomed = true;
        sendWelcome(socket.ws, "bob");
      }, 50);
    const connection = await connect({ receive: false, token: "secret-token" });
    expect(welcomed).toBe(true);
    expect(connection.welcome.user).toBe("bob");
    const { request } = server.sockets[0]!;
    expect(request.headers.authorization).toBe("Bearer secret-token");
    expect(request.url).toBe("/v1/connect?receive=0");
  });

  it("connects a receiving socket without the receive parameter, under the server's path prefix", async () => {
    welcomeOnConnect();
    await connect({ server: `${server.url}/prefix` });
    expect(server.sockets[0]!.request.url).toBe("/prefix/v1/connect");
  });

  it("turns a 401 upgrade answer into AuthError", async () => {
    server.onUpgrade = () => ({
      status: 401,
      body: { error: { code: "unauthorized", message: "session revoked" } },
    });
    await expect(connect()).rejects.toBeInstanceOf(AuthError);
  });

  it("turns a 429 upgrade answer into RateLimitedError with the Retry-After seconds", async () => {
    server.onUpgrade = () => ({
      status: 429,
      headers: { "retry-after": "7" },
      body: { error: { code: "rate_limited", message: "slow down" } },
    });
    const error = await connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterSeconds).toBe(7);
    expect((error as Error).message).toMatch(/try again in 7 seconds/);
  });

  it("reports an unreachable server as NetworkError naming the URL", async () => {
    const url = server.url;
    await server.close();
    server = await startStubServer(); // for afterEach; the old port is now closed
    const error = await Connection.open({
      net: nodePlatform(),
      server: url,
      token: "t",
      receive: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as Error).message).toContain(`cannot reach the Telepound server at ${url}`);
  });

  it("gives up when no welcome arrives in time", async () => {
    server.onSocket = () => undefined;
    const error = await connect({ connectTimeoutMs: 150 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as Error).message).toMatch(/no welcome/);
  });

  it("fails with the server's error when it refuses before welcoming", async () => {
    server.onSocket = (socket) =>
      socket.ws.send(JSON.stringify({ type: "error", code: "rate_limited", message: "too many sockets" }));
    await expect(connect()).rejects.toBeInstanceOf(RateLimitedError);
  });
});

describe("receiving", () => {
  it("hands deliveries over in order and resolves synced after them", async () => {
    const received: number[] = [];
    let syncedAfter = -1;
    welcomeOnConnect((socket) => {
      for (let i = 0; i < 5; i++) socket.ws.send(Uint8Array.of(0x02, i));
      socket.ws.send(JSON.stringify({ type: "synced" }));
    });
    const connection = await connect({ onDelivery: (frame) => received.push(frame[1]!) });
    await connection.synced.then(() => (syncedAfter = received.length));
    expect(received).toEqual([0, 1, 2, 3, 4]);
    expect(syncedAfter).toBe(5);
  });

  it("keeps the account's session count from welcome and sessions frames; none counted means maybe others", async () => {
    server.onSocket = (socket) => sendWelcome(socket.ws, "alice", 1);
    const alone = await connect();
    expect(alone.otherSessionsMayExist).toBe(false);
    server.sockets[0]!.ws.send(JSON.stringify({ type: "sessions", count: 2 }));
    await until(() => alone.otherSessionsMayExist);
    server.sockets[0]!.ws.send(JSON.stringify({ type: "sessions", count: 1 }));
    await until(() => !alone.otherSessionsMayExist);

    server.onSocket = (socket) => sendWelcome(socket.ws, "alice", null);
    expect((await connect()).otherSessionsMayExist).toBe(true);
  });

  it("treats a binary frame that is not a delivery as a protocol failure", async () => {
    const closed: CliError[] = [];
    welcomeOnConnect((socket) => socket.ws.send(Uint8Array.of(0x01, 0)));
    const connection = await connect({ onClose: (error) => closed.push(error) });
    await expect(connection.synced).rejects.toThrow(/protocol failure/);
    expect(closed[0]?.message).toMatch(/protocol failure: unexpected binary frame/);
  });

  it("treats an unknown text frame as a protocol failure", async () => {
    const closed: CliError[] = [];
    welcomeOnConnect((socket) => socket.ws.send(JSON.stringify({ type: "surprise" })));
    await connect({ onClose: (error) => closed.push(error) });
    await until(() => closed.length > 0);
    expect(closed[0]).toBeInstanceOf(NetworkError);
    expect(closed[0]?.message).toMatch(/protocol failure/);
  });
});

describe("group events", () => {
  const event = {
    type: "event",
    id: ID_A,
    event: "added",
    group: "devs",
    by: "carol",
    user: "alice",
    epoch: 2,
    members: ["alice", "carol"],
    invited: [],
    admin: "carol",
    at: 1_700_000_000_000,
    // The connection only routes events: stand-ins for the signed statement (groups.ts verifies it).
    statement: "AQ==",
    signature: "AQ==",
  };

  it("hands events to onEvent, in order with deliveries", async () => {
    const seen: string[] = [];
    welcomeOnConnect((socket) => {
      socket.ws.send(Uint8Array.of(0x02, 1));
      socket.ws.send(JSON.stringify(event));
      socket.ws.send(Uint8Array.of(0x02, 2));
    });
    await connect({
      onDelivery: (frame) => seen.push(`delivery ${frame[1]}`),
      onEvent: (received) => seen.push(`event ${received.id}`),
    });
    await until(() => seen.length === 3);
    expect(seen).toEqual(["delivery 1", `event ${ID_A}`, "delivery 2"]);
  });

  it("acknowledges an event nobody handles, so it cannot block the queue", async () => {
    welcomeOnConnect((socket) => socket.ws.send(JSON.stringify(event)));
    await connect({ ackDelayMs: 5 });
    expect(await server.sockets[0]!.next()).toEqual({ type: "ack", ids: [ID_A] });
  });
});

describe("uploads", () => {
  it("resolves each upload with the answer carrying its id, whatever the order", async () => {
    welcomeOnConnect();
    const connection = await connect({ receive: false });
    const socket = server.sockets[0]!;
    const a = connection.sendUpload(idFrame(ID_A), ID_A);
    const b = connection.sendUpload(idFrame(ID_B), ID_B);
    await until(() => socket.binaries.length === 2);
    expect(socket.binaries[0]).toEqual(idFrame(ID_A));
    socket.ws.send(JSON.stringify({ type: "sent", id: ID_B, status: "delivered" }));
    socket.ws.send(JSON.stringify({ type: "sent", id: ID_A, status: "stored" }));
    expect(await a).toBe("stored");
    expect(await b).toBe("delivered");
  });

  it("rejects an upload answered by an error frame with its id, typed by code", async () => {
    welcomeOnConnect((socket) =>
      socket.ws.on("message", (data: Buffer, isBinary) => {
        if (!isBinary) return;
        const id = Buffer.from(data.subarray(1)).toString("hex");
        const code = id === ID_A ? "unknown_user" : id === ID_B ? "stale_epoch" : "rate_limited";
        socket.ws.send(JSON.stringify({ type: "error", code, message: `nope ${code}`, id }));
      }),
    );
    const connection = await connect({ receive: false });
    await expect(connection.sendUpload(idFrame(ID_A), ID_A)).rejects.toBeInstanceOf(NotFoundError);
    await expect(connection.sendUpload(idFrame(ID_B), ID_B)).rejects.toBeInstanceOf(RefusedError);
    await expect(connection.sendUpload(idFrame(ID_C), ID_C)).rejects.toBeInstanceOf(RateLimitedError);
  });

  it("passes an error frame that answers no upload to onServerError", async () => {
    const errors: CliError[] = [];
    welcomeOnConnect((socket) =>
      socket.ws.send(JSON.stringify({ type: "error", code: "bad_frame", message: "invalid frame: ids" })),
    );
    await connect({ onServerError: (error) => errors.push(error) });
    await until(() => errors.length === 1);
    expect(errors[0]?.message).toMatch(/protocol failure: the server rejected a frame: invalid frame: ids/);
  });

  it("fails pending uploads and reports the close when the server drops the connection", async () => {
    const closed: CliError[] = [];
    welcomeOnConnect();
    const connection = await connect({ onClose: (error) => closed.push(error) });
    const upload = connection.sendUpload(idFrame(ID_A), ID_A);
    await until(() => server.sockets[0]!.binaries.length === 1);
    server.sockets[0]!.ws.close(1011, "going away");
    await expect(upload).rejects.toThrow(/ended before the server answered/);
    await expect(connection.synced).rejects.toBeInstanceOf(NetworkError);
    expect(closed).toHaveLength(1);
    expect(closed[0]?.message).toMatch(/1011: going away/);
  });

  it("reports a close for an ended session (4401) as AuthError, so the CLI exits 3", async () => {
    const closed: CliError[] = [];
    welcomeOnConnect();
    const connection = await connect({ onClose: (error) => closed.push(error) });
    server.sockets[0]!.ws.close(4401, "logged out");
    await expect(connection.synced).rejects.toBeInstanceOf(AuthError);
    expect(closed[0]).toBeInstanceOf(AuthError);
    expect(closed[0]?.exitCode).toBe(3);
  });

  it("times out an upload the server never answers", async () => {
    welcomeOnConnect();
    const connection = await connect({ answerTimeoutMs: 100 });
    await expect(connection.sendUpload(idFrame(ID_A), ID_A)).rejects.toThrow(/did not answer/);
  });
});

describe("acks", () => {
  it("batches acks queued close together into one frame, without repeats", async () => {
    welcomeOnConnect();
    const connection = await connect({ ackDelayMs: 30 });
    connection.ack(ID_A);
    connection.ack(ID_B);
    connection.ack(ID_A);
    connection.ack(ID_C);
    const frame = await server.sockets[0]!.next();
    expect(frame).toEqual({ type: "ack", ids: [ID_A, ID_B, ID_C] });
    await new Promise((done) => setTimeout(done, 80));
    expect(server.sockets[0]!.texts).toHaveLength(1);
  });

  it("never puts more than 1000 ids in one frame", async () => {
    welcomeOnConnect();
    const connection = await connect({ ackDelayMs: 20 });
    const ids = Array.from({ length: 2500 }, (_, i) => i.toString(16).padStart(32, "0"));
    for (const id of ids) connection.ack(id);
    const socket = server.sockets[0]!;
    await until(() => socket.texts.length === 3);
    const frames = socket.texts as Array<{ type: string; ids: string[] }>;
    expect(frames.map((frame) => frame.ids.length)).toEqual([1000, 1000, 500]);
    expect(frames.flatMap((frame) => frame.ids)).toEqual(ids);
  });

  it("acknowledges a group message to its group's room and the rest to the home", async () => {
    const group = groupDelivery("team", ID_B);
    welcomeOnConnect((socket) => {
      socket.ws.send(group);
      socket.ws.send(JSON.stringify({ type: "synced" }));
    });
    const connection = await connect({ ackDelayMs: 10, onDelivery: () => undefined });
    await connection.synced;
    connection.ack(ID_A);
    connection.ack(ID_B);
    const socket = server.sockets[0]!;
    await until(() => socket.texts.length === 2);
    expect(socket.texts).toEqual([
      { type: "ack", ids: [ID_A] },
      { type: "ack", ids: [ID_B], group: "team" },
    ]);
  });

  it("flushes queued acks before closing", async () => {
    welcomeOnConnect();
    const connection = await connect({ ackDelayMs: 10_000 });
    connection.ack(ID_A);
    const socket = server.sockets[0]!;
    const closedByClient = new Promise<number>((done) => socket.ws.on("close", (code) => done(code)));
    await connection.close();
    expect(socket.texts).toEqual([{ type: "ack", ids: [ID_A] }]);
    expect(await closedByClient).toBe(1000);
  });
});

describe("keep-alive", () => {
  it("pings with the protocol's ping frame and stays up while the server answers", async () => {
    const closed: CliError[] = [];
    welcomeOnConnect((socket) =>
      socket.ws.on("message", (data: Buffer) => {
        if (data.toString() === '{"type":"ping"}') socket.ws.send('{"type":"pong"}');
      }),
    );
    await connect({ pingIntervalMs: 40, onClose: (error) => closed.push(error) });
    await new Promise((done) => setTimeout(done, 300));
    expect(server.sockets[0]!.texts.length).toBeGreaterThanOrEqual(3);
    expect(server.sockets[0]!.texts[0]).toEqual({ type: "ping" });
    expect(closed).toEqual([]);
  });

  it("declares a silent connection dead", async () => {
    const closed: CliError[] = [];
    welcomeOnConnect();
    await connect({ pingIntervalMs: 40, onClose: (error) => closed.push(error) });
    await until(() => closed.length === 1, 2000);
    expect(closed[0]?.message).toMatch(/timed out/);
  });
});
