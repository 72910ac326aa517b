// Progress bars for file uploads and downloads (cli-progress), drawn from the core's `progress` events, on
// stderr and only where a person watches: stderr is a terminal and output is not --json. Everywhere else
// nothing subscribes, so scripts stay clean. cli-progress is loaded only then.

import type { SingleBar } from "cli-progress";
import type { ClientEmitter } from "../client/events.js";
import { formatBytes, sanitizeLine } from "./output.js";

/** Shows a bar per transfer while it runs; returns the function that stops showing them. */
export async function showProgress(
  events: ClientEmitter,
  stderr: NodeJS.WritableStream & { isTTY?: boolean },
  json: boolean,
): Promise<() => void> {
  if (json || !stderr.isTTY) return () => undefined;
  const { SingleBar } = await import("cli-progress");
  const bars = new Map<number, SingleBar>();
  return events.on("progress", ({ transfer, direction, name, phase, bytes, total }) => {
    const size = formatBytes(total);
    if (phase === "start") {
      const label = `${direction === "send" ? "sending" : "receiving"} ${name}`;
      const bar = new SingleBar({
        stream: stderr,
        format: `${sanitizeLine(label)} [{bar}] {percentage}% {done} of {size}`,
        hideCursor: true,
        // The finished bar is erased: the command's own result line says what happened.
        clearOnComplete: true,
        barsize: 30,
      });
      bar.start(Math.max(total, 1), 0, { done: formatBytes(0), size });
      bars.set(transfer, bar);
      return;
    }
    const bar = bars.get(transfer);
    if (!bar) return;
    if (phase === "advance") bar.update(Math.min(bytes, total), { done: formatBytes(bytes), size });
    else {
      bar.stop();
      bars.delete(transfer);
    }
  });
}
