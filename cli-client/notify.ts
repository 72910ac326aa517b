// Telling someone who stepped away from `chat` that a message came: the terminal bell, or a desktop
// notification. Desktop notifications use the platform's own tool (notify-send on Linux, osascript on
// macOS) rather than a library: one spawn, no native module, and nothing to do where none exists
// (the bell is used instead). They name the sender only: lock screens show notifications to passers-by.

import { spawn } from "node:child_process";
import { type TextSink, sanitizeLine } from "./output.js";

export type NotifyMode = "none" | "bell" | "desktop";
export const NOTIFY_MODES: readonly NotifyMode[] = ["none", "bell", "desktop"];

/** Without a key pressed for this long, the person counts as away. */
export const AWAY_AFTER_MS = 60_000;

export class Notifier {
  private lastActivity = Date.now();
  private desktopFailed = false;

  constructor(
    private readonly mode: NotifyMode,
    private readonly terminal: TextSink,
    private readonly platform: NodeJS.Platform = process.platform,
  ) {}

  /** A key was pressed: the person is here. */
  active(): void {
    this.lastActivity = Date.now();
  }

  get away(): boolean {
    return Date.now() - this.lastActivity >= AWAY_AFTER_MS;
  }

  /** A message from `from` (in `group`, if any) arrived: notifies if the person is away. */
  messageArrived(from: string, group?: string): void {
    if (this.mode === "none" || !this.away) return;
    if (this.mode === "desktop" && !this.desktopFailed) {
      // Names come from the server's side of the envelope: a notification daemon gets them sanitised too.
      const sender = sanitizeLine(from);
      this.desktop(
        group === undefined ? `message from ${sender}` : `message from ${sender} in #${sanitizeLine(group)}`,
      );
    } else this.terminal.write("\x07");
  }

  private desktop(body: string): void {
    const command =
      this.platform === "darwin"
        ? {
            file: "osascript",
            args: ["-e", `display notification ${appleString(body)} with title "Telepound"`],
          }
        : { file: "notify-send", args: ["--app-name=telepound", "Telepound", body] };
    const child = spawn(command.file, command.args, { stdio: "ignore" });
    child.on("error", () => {
      // Not installed (a server, a container): the bell from now on.
      this.desktopFailed = true;
      this.terminal.write("\x07");
    });
    child.unref();
  }
}

/** An AppleScript string literal: usernames cannot contain quotes, but nothing here relies on that. */
function appleString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
