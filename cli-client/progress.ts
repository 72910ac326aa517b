// Progress bars for file uploads and downloads (cli-progress), on stderr and only where a person watches:
// stderr is a terminal and output is not --json. Everywhere else they do nothing, so scripts stay clean.

import { SingleBar } from "cli-progress";
import { formatBytes, sanitizeLine } from "./output.js";

export interface Progress {
  /** `bytes` more were transferred. */
  advance(bytes: number): void;
  /** Finished or failed: the bar is removed from the line. */
  stop(): void;
}

/** Makes one bar per transfer; `label` names the file and the direction. */
export type ProgressFactory = (label: string, totalBytes: number) => Progress;

const SILENT: Progress = { advance: () => undefined, stop: () => undefined };

export const noProgress: ProgressFactory = () => SILENT;

export function progressBars(
  stderr: NodeJS.WritableStream & { isTTY?: boolean },
  json: boolean,
): ProgressFactory {
  if (json || !stderr.isTTY) return noProgress;
  return (label, totalBytes) => {
    const bar = new SingleBar({
      stream: stderr,
      format: `${sanitizeLine(label)} [{bar}] {percentage}% {done} of {size}`,
      hideCursor: true,
      // The finished bar is erased: the command's own result line says what happened.
      clearOnComplete: true,
      barsize: 30,
    });
    let done = 0;
    const size = formatBytes(totalBytes);
    bar.start(Math.max(totalBytes, 1), 0, { done: formatBytes(0), size });
    return {
      advance(bytes) {
        done += bytes;
        bar.update(Math.min(done, totalBytes), { done: formatBytes(done), size });
      },
      stop() {
        bar.stop();
      },
    };
  };
}
