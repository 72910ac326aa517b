// Attack: users and groups named like Object.prototype's properties (__proto__, constructor, toString,
// hasOwnProperty, lower-cased by the name rule). Once pinned, a key swap by a malicious server must be
// refused for them as for anyone (exit 8, nothing sent): a pin kept on a plain object under "__proto__"
// was never written, so every send was a "first contact" that sealed to whatever key the server gave.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";
import {
  type MaliciousServer,
  type ProxiedSocket,
  type Scenario,
  jsonResponse,
  startMaliciousServer,
} from "../support/malicious-server.js";

/** As typed at signup; the CLI and the server keep names lower-cased. */
const TYPED = ["__proto__", "constructor", "toString", "hasOwnProperty"] as const;
const NAMES = TYPED.map((name) => name.toLowerCase());

let server: LocalServer;
let proxy: MaliciousServer;
let alice: CliUser;
/** The operator's own account: its keys are what the proxy hands out in place of the victims'. */
let mallory: CliUser;
const people = new Map<string, CliUser>();

function user(label: string): CliUser {
  const password = `pw-${label}-${Math.random()}`;
  rememberSecret(`password of ${label}`, password);
  return { home: newHome(label.replace(/_/g, "u")), server: proxy.url, password };
}

function person(name: string): CliUser {
  const found = people.get(name);
  if (!found) throw new Error(`no such test user ${name}`);
  return found;
}

beforeAll(async () => {
  server = await startLocalServer();
  proxy = await startMaliciousServer(server.url);
  alice = user("alice");
  mallory = user("mallory");
  await cliOk(alice, ["signup", "alice"]);
  await cliOk(mallory, ["signup", "mallory"]);
  for (const typed of TYPED) {
    const who = user(typed);
    const [line] = jsonLines(await cliOk(who, ["--json", "signup", typed]));
    people.set(String(line!.username), who);
  }
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

/**
 * The key swap: every answer that gives `victim`'s keys (GET /v1/users/VICTIM, and the victim's entry in
 * POST /v1/users/lookup) gives mallory's instead, under the victim's name.
 */
function swapKeysOf(victim: string): Scenario {
  let mallorys: unknown;
  return {
    http: async (request, forward) => {
      // Asked with the session of the request being answered: any logged-in user may look mallory up.
      const asMallory = { ...request, method: "GET", path: "/v1/users/mallory", body: new Uint8Array() };
      mallorys ??= ((await (await forward(asMallory)).json()) as { publicKeys: unknown }).publicKeys;
      if (request.method === "GET" && request.path === `/v1/users/${encodeURIComponent(victim)}`) {
        return jsonResponse(200, { username: victim, publicKeys: mallorys });
      }
      if (request.method === "POST" && request.path === "/v1/users/lookup") {
        const real = (await (await forward()).json()) as {
          users: Array<{ username: string; publicKeys: unknown }>;
          missing: string[];
        };
        const users = real.users.map((entry) =>
          entry.username === victim ? { ...entry, publicKeys: mallorys } : entry,
        );
        return jsonResponse(200, { ...real, users });
      }
      return forward();
    },
  };
}

/** Binary frames (uploads) the CLI sent on sockets opened since `from`. */
function uploadsSince(from: number): number {
  return proxy.sockets
    .slice(from)
    .flatMap((socket: ProxiedSocket) => socket.fromClient)
    .filter((frame) => typeof frame !== "string").length;
}

describe("users named like Object.prototype's properties", () => {
  it("sign up under their lower-cased names", () => {
    expect([...people.keys()]).toEqual(NAMES);
  });

  for (const name of NAMES) {
    it(`${name}: pinned on first contact, a key swap later is refused with exit 8 and nothing is sent`, async () => {
      proxy.play({});
      const first = await runCli(alice, ["send", name, `hello ${name}`]);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain(`first contact with ${name}`);
      // The pin holds: the next send is no first contact.
      const second = await runCli(alice, ["send", name, `again ${name}`]);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).not.toContain("first contact");

      proxy.play(swapKeysOf(name));
      const socketsBefore = proxy.sockets.length;
      const swapped = await runCli(alice, ["send", name, `for mallory ${name}`]);
      expect(swapped.code, swapped.stderr).toBe(8);
      expect(swapped.stderr).toContain(`KEY MISMATCH for ${name}`);
      expect(uploadsSince(socketsBefore)).toBe(0);
      // Still refused on the next try, with the change remembered on disk.
      const again = await runCli(alice, ["send", name, `for mallory ${name}`]);
      expect(again.code).toBe(8);

      proxy.play({});
      const inbox = jsonLines(await cliOk(person(name), ["--json", "inbox"]));
      expect(inbox.map((line) => line.text)).toEqual([`hello ${name}`, `again ${name}`]);
      expect(inbox.every((line) => line.from === "alice" && line.to === name)).toBe(true);
    });
  }

  it("the receiving side pins alice under those names too: a swap of alice's keys is refused", async () => {
    proxy.play({});
    const owner = person("__proto__");
    await cliOk(owner, ["send", "alice", "reply"]);
    proxy.play(swapKeysOf("alice"));
    const refused = await runCli(owner, ["send", "alice", "for mallory"]);
    expect(refused.code).toBe(8);
    expect(refused.stderr).toContain("KEY MISMATCH for alice");
    proxy.play({});
  });
});

describe("groups named like Object.prototype's properties", () => {
  it("are created, sent to and received, and a member's swapped key in the lookup is refused", async () => {
    proxy.play({});
    // Fresh homes' view: the members have not pinned each other yet, so the group send looks them up.
    const admin = person("hasownproperty");
    const members = NAMES.filter((name) => name !== "hasownproperty");
    // The members write to the admin first, so the creates make them members at once.
    for (const member of members) await cliOk(person(member), ["send", "hasownproperty", "hello"]);
    for (const group of NAMES) {
      const [created] = jsonLines(await cliOk(admin, ["--json", "group", "create", group, ...members]));
      expect(created).toMatchObject({ name: group, admin: "hasownproperty" });
      expect((created!.members as string[]).sort()).toEqual([...NAMES].sort());
    }
    const [list] = jsonLines(await cliOk(person("constructor"), ["--json", "group", "list"]));
    expect(JSON.stringify(list)).toContain("__proto__");

    await cliOk(admin, ["send", "--group", "__proto__", "to the group"]);
    for (const member of ["__proto__", "constructor", "tostring"]) {
      const inbox = jsonLines(await cliOk(person(member), ["--json", "inbox"]));
      const texts = inbox.filter((line) => line.text !== undefined);
      expect(
        texts.map((line) => [line.group, line.text]),
        member,
      ).toContainEqual(["__proto__", "to the group"]);
    }

    // The lookup a group send makes gives mallory's key for "__proto__": refused, nothing sent.
    proxy.play(swapKeysOf("__proto__"));
    const socketsBefore = proxy.sockets.length;
    const refused = await runCli(admin, ["send", "--group", "tostring", "for mallory"]);
    expect(refused.code, refused.stderr).toBe(8);
    expect(refused.stderr).toContain("KEY MISMATCH for __proto__");
    expect(uploadsSince(socketsBefore)).toBe(0);
    proxy.play({});
    const inbox = jsonLines(await cliOk(person("tostring"), ["--json", "inbox"]));
    expect(inbox.map((line) => line.text)).not.toContain("for mallory");
  });
});
