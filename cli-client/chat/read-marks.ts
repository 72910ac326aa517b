// When this user last looked at each conversation in chat, kept in the home as chat-read.json (0600):
// what chat counts as unread and where it puts its "new since last time" line. Only chat reads it; a
// missing or unreadable file means nothing was read yet, which costs a marker, never a message.

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const FILE = "chat-read.json";

export class ReadMarks {
  private constructor(
    private readonly path: string,
    private readonly marks: Map<string, number>,
  ) {}

  static load(homeFolder: string): ReadMarks {
    const path = join(homeFolder, FILE);
    const marks = new Map<string, number>();
    try {
      const data: unknown = JSON.parse(readFileSync(path, "utf8"));
      if (data && typeof data === "object") {
        for (const [key, value] of Object.entries(data)) {
          if (typeof value === "number" && Number.isFinite(value)) marks.set(key, value);
        }
      }
    } catch {
      // Never written yet, or damaged: every conversation counts as unread from its start.
    }
    return new ReadMarks(path, marks);
  }

  /** When the conversation was last looked at (ms since the Unix epoch), 0 if never. */
  get(key: string): number {
    return this.marks.get(key) ?? 0;
  }

  /** Marks the conversation read up to `at` and writes the file (atomically: a crash keeps the old one). */
  set(key: string, at: number): void {
    if (at <= this.get(key)) return;
    this.marks.set(key, at);
    const temporary = `${this.path}.tmp`;
    try {
      writeFileSync(temporary, JSON.stringify(Object.fromEntries(this.marks)), { mode: 0o600 });
      renameSync(temporary, this.path);
    } catch {
      // A home that cannot be written loses only the marker, not the session.
    }
  }
}
