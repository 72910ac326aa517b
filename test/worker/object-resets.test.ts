// A home reset by the platform (a deploy, an eviction after an error) must not leave a shard unable to
// reach it: a stub whose object was reset can stay broken, so the shard makes a new one after a failure.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { homeStub } from "../../durable-objects/names.js";
import { fakeUpload, online, signup, uniqueName } from "./helpers.js";

it("delivers to a recipient whose home was reset, through the same shard as before", async () => {
  const alice = await signup(uniqueName("reset-a"));
  const bob = await signup(uniqueName("reset-b"));
  const sender = await online(alice.token, "?receive=0");
  const send = async () => {
    const upload = await fakeUpload({ sender: alice.username, target: bob.username });
    sender.ws.send(upload.frame);
    return sender.waitFor((r) => r.kind === "json" && r.frame.id === upload.id);
  };
  expect(await send()).toMatchObject({ frame: { type: "sent", status: "stored" } });
  await runInDurableObject(homeStub(env, bob.username), (_, state) => state.abort("reset")).catch(
    () => undefined,
  );
  // The first send may meet the broken stub and be refused by id (the client retries it); none after.
  await send();
  expect(await send()).toMatchObject({ frame: { type: "sent", status: "stored" } });
  expect(await send()).toMatchObject({ frame: { type: "sent", status: "stored" } });
  sender.close();
});
