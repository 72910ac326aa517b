// Attack: a malicious server puts terminal escapes (clear screen, OSC title, BEL, C1 CSI, concealed
// text, bidi override) into everything it answers: HTTP error messages, WebSocket error frames, the
// welcome, invented group events, names in lookup answers and group info. Nothing of it may reach a
// terminal raw: human output shows each as U+FFFD, --json escapes it and still parses, in every command.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CliProcess,
  type CliResult,
  type CliUser,
  cliOk,
  jsonLines,
  newHome,
  runCli,
} from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { PtyChat } from "../support/pty-chat.js";
import {
  type Frame,
  type MaliciousServer,
  type ProxiedRequest,
  type Scenario,
  jsonResponse,
  startMaliciousServer,
} from "../support/malicious-server.js";

/**
 * What the operator hides in every string: clear the screen and home the cursor, set the window title
 * (OSC, ended by BEL), CSI as the single C1 byte, conceal the text after it, NEL, DEL, NUL, CR, and a
 * right-to-left override. JSON carries all of it: the CLI's JSON.parse gives back the raw characters.
 */
const HOSTILE = "\u001b[2J\u001b[H\u001b]0;PWNED\u0007\u009b2J\u001b[8m\u0085\u007f\u0000\r\u202eevil";
/** Bytes a terminal acts on: C0 (but tab and newline), DEL and C1. */
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
/** How HOSTILE shows once neutralised: the visible rest, each control replaced by U+FFFD. */
const NEUTRALISED = "\ufffd[2J\ufffd[H\ufffd]0;PWNED\ufffd\ufffd2J\ufffd[8m";

let server: LocalServer;
let proxy: MaliciousServer;
let alice: CliUser;
let bob: CliUser;

function user(label: string): CliUser {
  return { home: newHome(label), server: proxy.url, password: `pw-${label}-${Math.random()}` };
}

beforeAll(async () => {
  server = await startLocalServer();
  proxy = await startMaliciousServer(server.url);
  alice = user("alice");
  bob = user("bob");
  await cliOk(alice, ["signup", "alice"]);
  await cliOk(bob, ["signup", "bob"]);
  await cliOk(alice, ["user", "bob"]);
  await cliOk(bob, ["user", "alice"]);
  // Bob has written to alice, so her create makes him a member at once.
  await cliOk(bob, ["send", "alice", "hello"]);
  await cliOk(alice, ["group", "create", "team", "bob"]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

/** Human output: no terminal control anywhere, and the attack visibly arrived (neutralised). */
function expectNeutralised(result: CliResult, where: "stdout" | "stderr"): void {
  for (const stream of ["stdout", "stderr"] as const) {
    expect(result[stream], `${stream}: ${JSON.stringify(result[stream])}`).not.toMatch(TERMINAL_CONTROLS);
    expect(result[stream]).not.toContain("\u202e");
  }
  expect(result[where]).toContain(NEUTRALISED);
}

/** --json output: no terminal control either, every line parses, and HOSTILE comes back exactly. */
function expectEscapedJson(result: CliResult, where: "stdout" | "stderr"): Array<Record<string, unknown>> {
  for (const stream of ["stdout", "stderr"] as const) {
    expect(result[stream], `${stream}: ${JSON.stringify(result[stream])}`).not.toMatch(TERMINAL_CONTROLS);
    expect(result[stream]).not.toContain("\u202e");
  }
  const lines = jsonLines(result[where]);
  expect(JSON.stringify(lines)).toContain(JSON.stringify(HOSTILE).slice(1, -1));
  jsonLines(result[where === "stdout" ? "stderr" : "stdout"]);
  return lines;
}

/** Answers the first request `matches` picks with the server's error shape carrying HOSTILE. */
function failing(matches: (request: ProxiedRequest) => boolean, status: number, code: string): Scenario {
  return {
    http: async (request, forward) =>
      matches(request) ? jsonResponse(status, { error: { code, message: HOSTILE } }) : forward(),
  };
}

/** A group event of the proxy's own invention, every name in it hostile. */
function inventedEvent(): string {
  const id = Array.from({ length: 32 }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");
  return JSON.stringify({
    type: "event",
    id,
    event: "added",
    group: `team${HOSTILE}`,
    by: HOSTILE,
    user: HOSTILE,
    epoch: 9,
    members: [HOSTILE, "bob"],
    admin: HOSTILE,
    at: Date.now(),
  });
}

/** Injects `frames` right after the welcome; everything else passes. */
function afterWelcome(...frames: Array<() => Frame>): Scenario {
  return {
    toClient: (frame, socket) => {
      if (typeof frame === "string" && frame.includes('"welcome"')) {
        setTimeout(() => frames.forEach((make) => socket.toClient(make())), 100);
      }
      return [frame];
    },
  };
}

describe("server error text in HTTP answers", () => {
  it("send: a 500 for the recipient's keys prints one neutralised line, exit 5; --json escapes it", async () => {
    proxy.play(failing((r) => r.path === "/v1/users/bob", 500, "internal"));
    const human = await runCli(alice, ["send", "bob", "hello"]);
    expect(human.code).toBe(5);
    expectNeutralised(human, "stderr");
    expect(human.stderr.trimEnd().split("\n")).toHaveLength(1);
    const json = await runCli(alice, ["--json", "send", "bob", "hello"]);
    expect(json.code).toBe(5);
    const [line] = expectEscapedJson(json, "stderr");
    expect((line!.error as { message: string }).message).toContain(HOSTILE);
  });

  it("send: a 403 and a 409 are neutralised the same way", async () => {
    for (const status of [403, 409]) {
      proxy.play(failing((r) => r.path === "/v1/users/bob", status, "forbidden"));
      const human = await runCli(alice, ["send", "bob", "hello"]);
      expect(human.code).toBe(7);
      expectNeutralised(human, "stderr");
      expectEscapedJson(await runCli(alice, ["--json", "send", "bob", "hello"]), "stderr");
    }
  });

  it("group info, list and create: every error line neutralised, with and without --json", async () => {
    // 403 and 409 on these routes get the CLI's own words ("you are not a member", "name taken"); the
    // server's text shows for the rest.
    const cases: Array<{ args: string[]; matches: (r: ProxiedRequest) => boolean; status: number }> = [
      { args: ["group", "info", "team"], matches: (r) => r.path === "/v1/groups/team", status: 500 },
      { args: ["group", "list"], matches: (r) => r.path === "/v1/groups", status: 500 },
      {
        args: ["group", "create", "crew", "bob"],
        matches: (r) => r.method === "POST" && r.path === "/v1/groups",
        status: 400,
      },
      {
        args: ["group", "add", "team", "carol"],
        matches: (r) => r.method === "POST" && r.path === "/v1/groups/team/members",
        status: 400,
      },
    ];
    for (const { args, matches, status } of cases) {
      proxy.play(failing(matches, status, "conflict"));
      const human = await runCli(alice, args);
      expect(human.code, args.join(" ")).not.toBe(0);
      expectNeutralised(human, "stderr");
      expectEscapedJson(await runCli(alice, ["--json", ...args]), "stderr");
    }
  });
});

describe("names in server answers", () => {
  it("user: an answer for a hostile name instead of bob is refused, and the name is neutralised", async () => {
    proxy.play({
      http: async (request, forward) => {
        const real = await forward();
        if (request.path !== "/v1/users/bob") return real;
        return jsonResponse(200, { ...((await real.json()) as object), username: HOSTILE });
      },
    });
    const human = await runCli(alice, ["user", "bob"]);
    expect(human.code).toBe(5);
    expectNeutralised(human, "stderr");
    expectEscapedJson(await runCli(alice, ["--json", "user", "bob"]), "stderr");
  });

  it("send --group: a lookup answer naming a hostile missing user is neutralised", async () => {
    proxy.play({
      http: async (request, forward) =>
        request.path === "/v1/users/lookup"
          ? jsonResponse(200, { users: [], missing: [HOSTILE] })
          : forward(),
    });
    // bob is pinned but not confirmed in this process: the group send asks the lookup for him.
    const human = await runCli(alice, ["send", "--group", "team", "hello"]);
    expect(human.code).not.toBe(0);
    expectNeutralised(human, "stderr");
    expectEscapedJson(await runCli(alice, ["--json", "send", "--group", "team", "hello"]), "stderr");
  });

  it("group info: hostile names in the member list are refused with the forged list, none of it shown raw", async () => {
    proxy.play({
      http: async (request, forward) => {
        const real = await forward();
        if (request.method !== "GET" || request.path !== "/v1/groups/team") return real;
        const info = (await real.json()) as { members: Array<{ username: string; joinedAt: number }> };
        return jsonResponse(200, {
          ...info,
          admin: HOSTILE,
          members: [...info.members, { username: `${HOSTILE}\nmembers, oldest first: alice`, joinedAt: 0 }],
        });
      },
    });
    const human = await runCli(alice, ["group", "info", "team"]);
    for (const stream of [human.stdout, human.stderr]) expect(stream).not.toMatch(TERMINAL_CONTROLS);
    // A member list the signed statements do not prove is refused outright (exit 8), names and all.
    expect(human.code).toBe(8);
    expect(human.stderr).toContain("does not match the signed members digest");
    expect(human.stdout + human.stderr).not.toContain("PWNED");
    // The name's newline cannot forge a line of the CLI's own.
    expect(human.stdout.match(/^members, oldest first/gm) ?? []).toHaveLength(0);
    const json = await runCli(alice, ["--json", "group", "info", "team"]);
    for (const stream of [json.stdout, json.stderr]) expect(stream).not.toMatch(TERMINAL_CONTROLS);
    jsonLines(json.stdout);
    jsonLines(json.stderr);
  });
});

describe("WebSocket frames", () => {
  it("send: an error frame answering the upload is neutralised, exit non-zero; --json escapes it", async () => {
    proxy.play({
      toClient: (frame) => {
        if (typeof frame !== "string" || !frame.includes('"sent"')) return [frame];
        const { id } = JSON.parse(frame) as { id: string };
        return [JSON.stringify({ type: "error", code: "forbidden", message: HOSTILE, id })];
      },
    });
    const human = await runCli(alice, ["send", "bob", "refused by the proxy"]);
    expect(human.code).not.toBe(0);
    expectNeutralised(human, "stderr");
    expectEscapedJson(await runCli(alice, ["--json", "send", "bob", "refused by the proxy"]), "stderr");
  });

  it("send: an error frame before the welcome is neutralised", async () => {
    proxy.play({
      toClient: (frame) =>
        typeof frame === "string" && frame.includes('"welcome"')
          ? [JSON.stringify({ type: "error", code: "internal", message: HOSTILE })]
          : [frame],
    });
    const human = await runCli(alice, ["send", "bob", "never sent"]);
    expect(human.code).not.toBe(0);
    expectNeutralised(human, "stderr");
    expectEscapedJson(await runCli(alice, ["--json", "send", "bob", "never sent"]), "stderr");
  });

  it("inbox: a hostile welcome, a stray error frame and an invented event are all neutralised", async () => {
    const scenario = (): Scenario => ({
      toClient: (frame, socket) => {
        if (typeof frame === "string" && frame.includes('"welcome"')) {
          const welcome = JSON.parse(frame) as Record<string, unknown>;
          socket.toClient(JSON.stringify({ ...welcome, user: HOSTILE, shard: HOSTILE }));
          socket.toClient(JSON.stringify({ type: "error", code: "internal", message: HOSTILE }));
          socket.toClient(inventedEvent());
          return [];
        }
        return [frame];
      },
    });
    proxy.play(scenario());
    const human = await runCli(bob, ["inbox"]);
    expectNeutralised(human, human.stdout.includes(NEUTRALISED) ? "stdout" : "stderr");
    expect(human.stdout + human.stderr).toContain("PWNED");
    proxy.play(scenario());
    const json = await runCli(bob, ["--json", "inbox"]);
    for (const stream of [json.stdout, json.stderr]) expect(stream).not.toMatch(TERMINAL_CONTROLS);
    const lines = [...jsonLines(json.stdout), ...jsonLines(json.stderr)];
    expect(JSON.stringify(lines)).toContain(JSON.stringify(HOSTILE).slice(1, -1));
  });

  it("listen: stray error frames and invented events while listening are neutralised", async () => {
    for (const args of [["listen"], ["--json", "listen"]]) {
      proxy.play(
        afterWelcome(
          () => JSON.stringify({ type: "error", code: "internal", message: HOSTILE }),
          inventedEvent,
        ),
      );
      const listener = new CliProcess(bob, args);
      try {
        await listener.waitForOutput(() => (listener.stdout + listener.stderr).includes("PWNED"));
        await new Promise((resolve) => setTimeout(resolve, 500));
      } finally {
        listener.child.kill("SIGINT");
        await listener.exited;
      }
      for (const stream of [listener.stdout, listener.stderr]) {
        expect(stream, JSON.stringify(stream)).not.toMatch(TERMINAL_CONTROLS);
        expect(stream).not.toContain("\u202e");
        if (args[0] === "--json") jsonLines(stream);
      }
    }
  });
});

describe("message text from another user", () => {
  it("inbox shows it neutralised and --json gives it back exactly, escaped", async () => {
    proxy.play({});
    // No NUL: an argument cannot carry one. The rest travels end to end, signed by alice.
    const text = `hi ${HOSTILE.replace("\u0000", "")}`;
    await cliOk(alice, ["send", "bob", text]);
    const human = await runCli(bob, ["inbox"]);
    expect(human.code).toBe(0);
    expectNeutralised(human, "stdout");
    await cliOk(alice, ["send", "bob", text]);
    const json = await runCli(bob, ["--json", "inbox"]);
    expect(json.code).toBe(0);
    for (const stream of [json.stdout, json.stderr]) expect(stream).not.toMatch(TERMINAL_CONTROLS);
    expect(jsonLines(json.stdout).map((line) => line.text)).toContain(text);
  });
});

describe("chat in a terminal", () => {
  it("shows hostile error frames, an invented event, message text and an HTTP error neutralised", async () => {
    proxy.play(
      afterWelcome(
        () => JSON.stringify({ type: "error", code: "internal", message: HOSTILE }),
        inventedEvent,
      ),
    );
    const chat = new PtyChat(bob);
    try {
      await chat.waitFor((text) => text.includes("logged in as bob"), "the greeting");
      // The event is the proxy's invention, without a signed statement: refused, and nothing of it may
      // reach the terminal raw.
      await chat.waitFor((text) => text.includes("warning: server error: \ufffd[2J"), "the error frame");
      // Honest again for alice's send: the invented event, malformed now that events carry a signed
      // statement, would end her send as a protocol failure.
      proxy.play({});
      await cliOk(alice, ["send", "bob", `chat ${HOSTILE.replace("\u0000", "")}`]);
      await chat.waitFor((text) => /alice: chat/.test(text), "alice's message");
      // An HTTP error answering a chat command.
      proxy.play(failing((r) => r.path === "/v1/groups/team", 500, "internal"));
      chat.pty.write("/group team\r");
      await chat.waitFor((text) => text.includes("telepound: server error (HTTP 500)"), "the failed /group");
      chat.pty.write("/quit\r");
      expect(await chat.exited).toBe(0);
    } finally {
      chat.pty.kill();
    }
    // Only the CLI's own sequences may remain: SGR colours and readline's line editing (erase in line,
    // erase below, cursor to column, cursor moves); CR and LF are the pty's line ends. Nothing of the
    // attacker's: no clear screen, no cursor home, no OSC, no concealed text.
    expect(chat.output).not.toContain("\u001b[2J");
    expect(chat.output).not.toContain("\u001b[H");
    expect(chat.output).not.toContain("\u001b]");
    expect(chat.output).not.toContain("\u001b[8m");
    const withoutOwn = chat.output.replace(/\u001b\[[0-9;]*[mGKJCDAB]/g, "").replace(/\r\n|\r|\n/g, "\n");
    expect(withoutOwn, JSON.stringify(withoutOwn)).not.toMatch(TERMINAL_CONTROLS);
    expect(withoutOwn).not.toContain("\u202e");
    expect(withoutOwn).toContain(NEUTRALISED);
  });
});
