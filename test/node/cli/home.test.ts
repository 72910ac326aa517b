// The home folder: owner-only permissions whatever the umask, atomic writes that never leave partial or
// temp files, the lock that serialises read-modify-write across processes, and DIR resolution.

import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CliError } from "../../../client/errors.js";
import { nodeHome, resolveHomeDir } from "../../../cli-client/platform/node-home.js";
import { tempDir } from "./helpers.js";

const session = {
  server: "http://127.0.0.1:8787",
  username: "alice",
  token: "t0ken",
  sessionId: "s1",
  expiresAt: 1_900_000_000_000,
};

let dir: Awaited<ReturnType<typeof tempDir>>;
let previousUmask: number;

beforeEach(async () => {
  dir = await tempDir();
  // The loosest umask: permissions must come from the code, not from the environment.
  previousUmask = process.umask(0);
});

afterEach(async () => {
  process.umask(previousUmask);
  await dir.remove();
});

describe("Home permissions", () => {
  it("creates the folder 0700 and files 0600 even with umask 0", async () => {
    const home = nodeHome(join(dir.path, "nested", "home"));
    await home.write("session.json", session);
    expect((await stat(home.location)).mode & 0o777).toBe(0o700);
    expect((await stat(join(home.location, "session.json"))).mode & 0o777).toBe(0o600);
  });

  it("tightens an existing folder that others can read", async () => {
    const path = join(dir.path, "loose");
    await mkdir(path);
    await chmod(path, 0o755);
    await nodeHome(path).ensure();
    expect((await stat(path)).mode & 0o777).toBe(0o700);
  });
});

describe("Home atomic writes", () => {
  it("round-trips a value and leaves no temp file behind", async () => {
    const home = nodeHome(dir.path);
    await home.write("session.json", session);
    await home.write("session.json", { ...session, token: "second" });
    expect(await home.read("session.json")).toEqual({ ...session, token: "second" });
    expect(await readdir(dir.path)).toEqual(["session.json"]);
  });

  it("keeps the old content when a write is refused", async () => {
    const home = nodeHome(dir.path);
    await home.write("session.json", session);
    // An invalid value must fail before anything touches the file.
    await expect(home.write("session.json", { ...session, expiresAt: "soon" } as never)).rejects.toThrow();
    expect(await home.read("session.json")).toEqual(session);
    expect(await readdir(dir.path)).toEqual(["session.json"]);
  });

  it("never exposes a partial file to a concurrent reader", async () => {
    const home = nodeHome(dir.path);
    const big = {
      owner: "alice",
      ids: Array.from({ length: 5000 }, (_, i) => [`id-${i}`, i] as [string, number]),
    };
    await home.write("seen.json", big);
    const writes = Array.from({ length: 20 }, () => home.write("seen.json", big));
    const reads = Array.from({ length: 20 }, () => home.read("seen.json"));
    const results = await Promise.all([...writes, ...reads]);
    for (const value of results.slice(20)) expect(value).toEqual(big);
  });

  it("reads a missing file as null and a damaged one as an error naming it", async () => {
    const home = nodeHome(dir.path);
    expect(await home.read("contacts.json")).toBeNull();
    await writeFile(join(dir.path, "contacts.json"), "{not json");
    await expect(home.read("contacts.json")).rejects.toThrow(CliError);
    await expect(home.read("contacts.json")).rejects.toThrow(/contacts\.json is damaged/);
  });
});

describe("contacts.json", () => {
  const pin = {
    publicKeys: { encryption: "AAAA", signing: "AQID" },
    fingerprint: "f",
    firstSeen: "2026-01-01T00:00:00.000Z",
  };

  it("keeps pins for names that are Object.prototype's properties, in memory and on disk", async () => {
    const home = nodeHome(dir.path);
    const names = ["__proto__", "constructor", "tostring", "hasownproperty", "valueof"];
    await home.write("contacts.json", {
      owner: "alice",
      contacts: new Map(names.map((name, i) => [name, { ...pin, fingerprint: `f${i}` }])),
    });
    const onDisk = JSON.parse(await readFile(join(dir.path, "contacts.json"), "utf8"));
    expect(Object.keys(onDisk.contacts)).toEqual(names);
    const read = await home.read("contacts.json");
    expect([...read!.contacts.keys()]).toEqual(names);
    expect(read!.contacts.get("__proto__")?.fingerprint).toBe("f0");
    // A name never pinned is not found, whatever Object.prototype holds.
    expect(read!.contacts.get("isprototypeof")).toBeUndefined();
  });

  it("reads a file written as a JSON object, and refuses one that is not an object of pins", async () => {
    const home = nodeHome(dir.path);
    await writeFile(
      join(dir.path, "contacts.json"),
      `{"owner":"alice","contacts":{"__proto__":${JSON.stringify(pin)}}}`,
    );
    expect((await home.read("contacts.json"))!.contacts.get("__proto__")).toEqual(pin);
    await writeFile(join(dir.path, "contacts.json"), `{"owner":"alice","contacts":[]}`);
    await expect(home.read("contacts.json")).rejects.toThrow(/contacts\.json is damaged/);
    await writeFile(
      join(dir.path, "contacts.json"),
      `{"owner":"alice","contacts":{"bob":{"fingerprint":1}}}`,
    );
    await expect(home.read("contacts.json")).rejects.toThrow(/contacts\.json is damaged/);
  });

  it("refuses to write an invalid pin", async () => {
    const home = nodeHome(dir.path);
    const bad = new Map([["bob", { ...pin, fingerprint: 7 }]]);
    await expect(home.write("contacts.json", { owner: "alice", contacts: bad } as never)).rejects.toThrow();
    expect(await home.read("contacts.json")).toBeNull();
  });
});

describe("Home lock", () => {
  it("serialises read-modify-write so no update is lost", async () => {
    const home = nodeHome(dir.path);
    await home.write("state.json", { username: "alice", counter: 0 });
    const bump = () =>
      home.withLock(async () => {
        const state = await home.read("state.json");
        await new Promise((done) => setTimeout(done, 1));
        await home.write("state.json", { username: "alice", counter: state!.counter + 1 });
      });
    await Promise.all(Array.from({ length: 25 }, bump));
    expect((await home.read("state.json"))?.counter).toBe(25);
    expect(await readdir(dir.path)).toEqual(["state.json"]);
  });

  it("breaks a lock left by a process that no longer exists", async () => {
    const home = nodeHome(dir.path);
    await home.ensure();
    // PID 2^22+1 is above Linux's pid_max ceiling, so no process has it.
    await writeFile(join(dir.path, "home.lock"), `${2 ** 22 + 1}\n`);
    const started = Date.now();
    await home.withLock(async () => undefined);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("waits for a lock held by a live process", async () => {
    const home = nodeHome(dir.path);
    await home.ensure();
    await writeFile(join(dir.path, "home.lock"), `${process.pid}\n`);
    let entered = false;
    const waiting = home.withLock(async () => {
      entered = true;
    });
    await new Promise((done) => setTimeout(done, 100));
    expect(entered).toBe(false);
    await rm(join(dir.path, "home.lock"));
    await waiting;
    expect(entered).toBe(true);
    expect(await readFile(join(dir.path, "home.lock"), "utf8").catch(() => "gone")).toBe("gone");
  });
});

describe("resolveHomeDir", () => {
  it("prefers --home, then $TELEPOUND_HOME, then $XDG_CONFIG_HOME/telepound", () => {
    const env = { TELEPOUND_HOME: "/env/home", XDG_CONFIG_HOME: "/xdg" };
    expect(resolveHomeDir("/opt/h", env)).toBe("/opt/h");
    expect(resolveHomeDir(undefined, env)).toBe("/env/home");
    expect(resolveHomeDir(undefined, { XDG_CONFIG_HOME: "/xdg" })).toBe("/xdg/telepound");
    expect(resolveHomeDir(undefined, {})).toMatch(/\/\.config\/telepound$/);
  });
});
