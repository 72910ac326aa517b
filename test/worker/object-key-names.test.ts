// Usernames and group names that are also property names of every plain object (__proto__, constructor,
// toString, hasOwnProperty, after lower-casing): accounts, sessions, lookup, messages and groups treat them
// as the ordinary names they are, since nothing the server keys by a name from the network is a plain object.

import { beforeAll, describe, expect, it } from "vitest";
import { decodeDelivery } from "../../protocol/envelope.js";
import type { GroupInfo, SessionResponse } from "../../protocol/http.js";
import { addMember, createGroup, removeMember, writeTo } from "./group-changes.js";
import { api, authKeyFor, fakeUpload, login, online, postGroup, signupBody } from "./helpers.js";

/** As typed at signup; the server keeps names lower-cased. */
const TYPED = ["__proto__", "constructor", "toString", "hasOwnProperty"] as const;
const NAMES = TYPED.map((name) => name.toLowerCase());

const sessions = new Map<string, SessionResponse>();
function session(name: string): SessionResponse {
  const found = sessions.get(name);
  if (!found) throw new Error(`no session for ${name}`);
  return found;
}

beforeAll(async () => {
  for (const typed of TYPED) {
    // Signed up as typed; the test's stand-in auth key is derived from the name as the server keeps it.
    const body = await signupBody(typed, { authKey: authKeyFor(typed.toLowerCase()) });
    const created = await api("/v1/signup", { method: "POST", body });
    expect(created.status, typed).toBe(201);
    const answer = (await created.json()) as SessionResponse;
    sessions.set(answer.username, answer);
  }
});

describe("accounts named like Object.prototype's properties", () => {
  it("sign up under their lower-cased names, once each", async () => {
    expect([...sessions.keys()]).toEqual(NAMES);
    for (const name of NAMES) {
      const again = await api("/v1/signup", { method: "POST", body: await signupBody(name.toUpperCase()) });
      expect(again.status, name).toBe(409);
    }
  });

  it("log in with their own key only", async () => {
    for (const name of NAMES) {
      await expect(login(name)).resolves.toMatchObject({ username: name });
      const wrong = await api("/v1/login", {
        method: "POST",
        body: JSON.stringify({ username: name, authKey: authKeyFor("someone-else") }),
      });
      expect(wrong.status, name).toBe(401);
    }
    // A name on the prototype that has no account is unknown like any other.
    const unknown = await api("/v1/login", {
      method: "POST",
      body: JSON.stringify({ username: "valueof", authKey: authKeyFor("valueof") }),
    });
    expect(unknown.status).toBe(401);
  });

  it("keep sessions apart: logging one out revokes only that one", async () => {
    const extra = await login("__proto__");
    expect((await api("/v1/logout", { method: "POST", token: extra.token })).status).toBe(204);
    expect((await api("/v1/whoami", { token: extra.token })).status).toBe(401);
    for (const name of NAMES) {
      const whoami = await api("/v1/whoami", { token: session(name).token });
      expect(whoami.status, name).toBe(200);
      expect(await whoami.json()).toMatchObject({ username: name });
    }
  });

  it("are found by lookup, one by one and in bulk, and the missing ones are named", async () => {
    const asker = session("constructor");
    for (const name of NAMES) {
      const found = await api(`/v1/users/${name}`, { token: asker.token });
      expect(found.status, name).toBe(200);
      expect(await found.json()).toMatchObject({ username: name, publicKeys: session(name).publicKeys });
    }
    const bulk = await api("/v1/users/lookup", {
      method: "POST",
      token: asker.token,
      body: JSON.stringify({ usernames: [...NAMES, "valueof", "isprototypeof"] }),
    });
    expect(bulk.status).toBe(200);
    const body = (await bulk.json()) as { users: Array<{ username: string }>; missing: string[] };
    expect(body.users.map((user) => user.username)).toEqual(NAMES);
    expect(body.missing).toEqual(["valueof", "isprototypeof"]);
  });

  it("exchange direct messages, delivered to the right queue", async () => {
    const from = await online(session("__proto__").token);
    const to = await online(session("hasownproperty").token);
    const upload = await fakeUpload({ sender: "__proto__", target: "hasownproperty" });
    from.ws.send(upload.frame);
    const reply = await from.waitFor(
      (r) => r.kind === "json" && r.frame.type === "sent" && r.frame.id === upload.id,
    );
    expect(reply).toMatchObject({ frame: { status: "delivered" } });
    const received = await to.waitFor((r) => r.kind === "binary");
    const delivery = decodeDelivery((received as { bytes: Uint8Array }).bytes);
    expect(delivery.messageIdHex).toBe(upload.id);
    expect(delivery.header.sender).toBe("__proto__");
    from.close();
    to.close();
  });
});

describe("groups named like Object.prototype's properties", () => {
  it("are created, listed, changed and posted to like any other group", async () => {
    const admin = session("__proto__");
    await writeTo(admin, ["constructor", "tostring", "hasownproperty"].map(session));
    for (const group of NAMES) {
      const created = await createGroup(admin, group, ["constructor", "tostring"]);
      expect(created.status, group).toBe(201);
      const info: GroupInfo = await created.json();
      expect(info).toMatchObject({ name: group, admin: "__proto__", epoch: 1 });
      expect(info.members.map((member) => member.username)).toEqual(["__proto__", "constructor", "tostring"]);
    }
    const list = await api("/v1/groups", { token: session("tostring").token });
    expect(((await list.json()) as { groups: string[] }).groups.sort()).toEqual([...NAMES].sort());

    // Another member, a removal, and the group's own view of them.
    expect((await addMember(admin, "constructor", "hasownproperty")).status).toBe(200);
    expect((await removeMember(admin, "constructor", "tostring")).status).toBe(200);
    const info: GroupInfo = await (await api("/v1/groups/constructor", { token: admin.token })).json();
    expect(info.members.map((member) => member.username)).toEqual([
      "__proto__",
      "constructor",
      "hasownproperty",
    ]);
    expect(info.epoch).toBe(3);
    expect((await api("/v1/groups/constructor", { token: session("tostring").token })).status).toBe(403);

    // A group message reaches exactly the members of its epoch.
    const sender = await online(admin.token);
    const member = await online(session("hasownproperty").token);
    const members = ["__proto__", "constructor", "hasownproperty"];
    const { id, reply } = await postGroup(sender, admin, "constructor", 3, members);
    expect(reply).toMatchObject({ type: "sent" });
    await member.waitFor((r) => r.kind === "binary" && decodeDelivery(r.bytes).messageIdHex === id);
    sender.close();
    member.close();
  });
});
