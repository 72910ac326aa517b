// chat's --notify: nothing while the person types, the bell (or a desktop notification) once they are away.

import { afterEach, describe, expect, it, vi } from "vitest";
import { AWAY_AFTER_MS, Notifier } from "../../../cli-client/notify.js";
import { sink } from "./helpers.js";

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

describe("Notifier", () => {
  it("rings the bell only for messages that arrive while the person is away", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const terminal = sink();
    const notifier = new Notifier("bell", terminal);
    notifier.messageArrived("bob");
    expect(terminal.text()).toBe("");
    vi.advanceTimersByTime(AWAY_AFTER_MS);
    notifier.messageArrived("bob");
    expect(terminal.text()).toBe("\x07");
    notifier.active();
    notifier.messageArrived("bob");
    expect(terminal.text()).toBe("\x07");
  });

  it("stays silent in mode none", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const terminal = sink();
    const notifier = new Notifier("none", terminal);
    vi.advanceTimersByTime(AWAY_AFTER_MS * 2);
    notifier.messageArrived("bob");
    expect(terminal.text()).toBe("");
  });

  it("falls back to the bell where there is no desktop notifier", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.stubEnv("PATH", "/nonexistent");
    const terminal = sink();
    const notifier = new Notifier("desktop", terminal, "linux");
    vi.advanceTimersByTime(AWAY_AFTER_MS);
    notifier.messageArrived("bob", "team");
    await vi.waitFor(() => expect(terminal.text()).toBe("\x07"));
    // From then on straight to the bell, without trying again.
    notifier.messageArrived("bob");
    expect(terminal.text()).toBe("\x07\x07");
  });
});
