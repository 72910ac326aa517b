// End to end, sessions as devices with the real CLI against `wrangler dev`: one user on several homes
// lists them, revokes another (whose `listen` stops and whose next command is told why, exit 3), and a
// login past the session cap (MAX_SESSIONS_PER_ACCOUNT, 3 here) ends the longest-idle session and says so.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess, type CliUser, cliOk, jsonLines, newHome, runCli } from "../support/cli.js";
import { type LocalServer, startLocalServer } from "../support/local-server.js";
import { rememberSecret } from "../support/privacy.js";

const PASSWORD = "devices e2e password";
/** Small, so the cap is reached with a few logins; the default (10) is a [vars] setting like this one. */
const CAP = 3;

let server: LocalServer;
const running: CliProcess[] = [];

beforeAll(async () => {
  rememberSecret("password of the devices users", PASSWORD);
  server = await startLocalServer({ vars: { MAX_SESSIONS_PER_ACCOUNT: String(CAP) } });
}, 120_000);

afterAll(async () => {
  for (const process of running) process.child.kill("SIGTERM");
  await server?.stop();
});

function home(label: string): CliUser {
  return { home: newHome(label), server: server.url, password: PASSWORD };
}

interface ListedDevice {
  id: string;
  deviceName: string | null;
  createdAt: string;
  lastSeenAt: string;
  current: boolean;
}

async function devicesOf(user: CliUser): Promise<ListedDevice[]> {
  const [answer] = jsonLines(await cliOk(user, ["devices", "--json"]));
  return (answer as { sessions: ListedDevice[] }).sessions;
}

describe("telepound devices", () => {
  it(
    "lists one user's two homes, revokes the other, whose listen stops and whose next command exits 3",
    {
      timeout: 120_000,
    },
    async () => {
      const desk = home("desk");
      const laptop = home("laptop");
      await cliOk(desk, ["signup", "dana", "--device-name", "desk"]);
      await cliOk(laptop, ["login", "dana", "--device-name", "laptop"]);

      const listed = await devicesOf(desk);
      expect(listed.map(({ deviceName, current }) => [deviceName, current])).toEqual([
        ["desk", true],
        ["laptop", false],
      ]);
      for (const device of listed) {
        expect(Date.parse(device.createdAt)).toBeGreaterThan(Date.now() - 120_000);
        expect(Date.parse(device.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(device.createdAt));
      }
      const human = await cliOk(laptop, ["devices"]);
      expect(human).toMatch(/^\* [0-9a-f]{12} {2}"laptop" .*last seen now \(this device\)$/m);
      expect(human).toMatch(/^ {2}[0-9a-f]{12} {2}"desk" /m);

      // The laptop is listening when the desk ends its session: its socket is closed (4401) and it stops.
      const listen = new CliProcess(laptop, ["listen", "--json"]);
      running.push(listen);
      const laptopId = listed[1]!.id;
      await expect
        .poll(
          async () => {
            const [answer] = jsonLines(await cliOk(desk, ["devices", "--json"]));
            return (answer as { sessions: Array<{ id: string; connected: boolean }> }).sessions.find(
              (s) => s.id === laptopId,
            )?.connected;
          },
          { timeout: 20_000 },
        )
        .toBe(true);

      const revoke = await cliOk(desk, ["devices", "revoke", laptopId.slice(0, 6)]);
      expect(revoke).toContain(`ended the session ${laptopId.slice(0, 12)} ("laptop")`);
      expect(await listen.exited).toBe(3);
      expect(listen.stderr).toContain("the session ended (4401: revoked from another device): log in again");

      const next = await runCli(laptop, ["whoami"]);
      expect(next.code).toBe(3);
      expect(next.stderr).toContain("this session was revoked from another of your devices");
      expect((await devicesOf(desk)).map((device) => device.deviceName)).toEqual(["desk"]);
      // Revoking a session that is gone already: exit 4.
      expect((await runCli(desk, ["devices", "revoke", laptopId])).code).toBe(4);
    },
  );

  it(`past the cap (${CAP} here), a login ends the longest-idle session, names it, and that home is told why`, async () => {
    const homes = ["first", "second", "third"].map(home);
    await cliOk(homes[0]!, ["signup", "erin", "--device-name", "first"]);
    await cliOk(homes[1]!, ["login", "erin", "--device-name", "second"]);
    await cliOk(homes[2]!, ["login", "erin", "--device-name", "third"]);
    expect(await devicesOf(homes[2]!)).toHaveLength(CAP);

    const fourth = home("fourth");
    const login = jsonLines(await cliOk(fourth, ["login", "erin", "--device-name", "fourth", "--json"]))[0]!;
    const ended = login.endedSessions as Array<{ deviceName: string }>;
    expect(ended.map((session) => session.deviceName)).toEqual(["first"]);
    const human = await runCli(home("fifth"), ["login", "erin", "--device-name", "fifth"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(
      /the account was at its session limit: ended the session [0-9a-f]{8} \("second"/,
    );

    expect((await devicesOf(fourth)).map((device) => device.deviceName)).toEqual([
      "third",
      "fourth",
      "fifth",
    ]);
    const told = await runCli(homes[0]!, ["whoami"]);
    expect(told.code).toBe(3);
    expect(told.stderr).toContain("reached the account's limit of sessions");
  });
});
