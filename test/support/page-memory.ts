// The memory a page uses while it works, sampled from outside through the DevTools protocol:
// - the page's JavaScript: Runtime.getHeapUsage of its main isolate, the heap in use (usedSize) plus the
//   backing stores of its ArrayBuffers (backingStorageSize), where file pieces, ciphertext and fetch
//   bodies live; JSHeapUsedSize of Performance.getMetrics counts the heap alone and misses them. Each
//   sample first has the page collect its garbage (HeapProfiler.collectGarbage), so what it counts is
//   what the page holds: moving a file makes garbage by the megabyte (every network piece and every
//   decrypted chunk is a new buffer), which the collector reclaims when it sees fit, and without it the
//   same transfer peaked anywhere between 28 and 46 MiB over idle from one run to the next;
// - the renderer process as the kernel sees it: the resident set (VmRSS in /proc) of the browser's
//   renderer processes, which SystemInfo.getProcessInfo lists by id. It also counts what JavaScript does
//   not see (Blink's own buffers, the scrypt worker, code), so it is larger and noisier.
// The peak of each is what a test bounds: a 100 MiB file must never be in page memory whole.

import { readFileSync } from "node:fs";
import type { Browser, CDPSession, Page } from "playwright-core";

const MIB = 1024 * 1024;

export interface MemoryPeaks {
  /** The page's heap in use plus ArrayBuffer backing stores, in MiB. */
  jsMiB: number;
  /** The largest resident set of any renderer process, in MiB; null where /proc cannot be read. */
  rendererRssMiB: number | null;
}

export interface MemorySampler {
  /** The peaks since the sampler started (or since the last `reset`). */
  peaks(): MemoryPeaks;
  /** One sample now, for a baseline. */
  sampleNow(): Promise<MemoryPeaks>;
  reset(): void;
  stop(): Promise<void>;
}

interface HeapUsage {
  usedSize: number;
  backingStorageSize?: number;
}

interface ProcessInfo {
  type: string;
  id: number;
}

export async function sampleMemory(browser: Browser, page: Page, intervalMs = 100): Promise<MemorySampler> {
  const pageSession: CDPSession = await page.context().newCDPSession(page);
  const browserSession: CDPSession = await browser.newBrowserCDPSession();
  let peakJs = 0;
  let peakRss: number | null = null;
  let stopped = false;

  const sampleNow = async (): Promise<MemoryPeaks> => {
    await pageSession.send("HeapProfiler.collectGarbage");
    const heap = (await pageSession.send("Runtime.getHeapUsage")) as HeapUsage;
    if (heap.backingStorageSize === undefined)
      throw new Error("this Chromium does not report ArrayBuffer backing stores (Runtime.getHeapUsage)");
    const jsMiB = (heap.usedSize + heap.backingStorageSize) / MIB;
    const rendererRssMiB = await largestRendererRss(browserSession);
    peakJs = Math.max(peakJs, jsMiB);
    if (rendererRssMiB !== null) peakRss = Math.max(peakRss ?? 0, rendererRssMiB);
    return { jsMiB, rendererRssMiB };
  };

  const loop = (async () => {
    while (!stopped) {
      // A page that navigates or closes in between refuses one sample; the next one counts.
      await sampleNow().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();

  return {
    peaks: () => ({ jsMiB: peakJs, rendererRssMiB: peakRss }),
    sampleNow,
    reset() {
      peakJs = 0;
      peakRss = null;
    },
    async stop() {
      stopped = true;
      await loop;
      await pageSession.detach().catch(() => undefined);
      await browserSession.detach().catch(() => undefined);
    },
  };
}

async function largestRendererRss(session: CDPSession): Promise<number | null> {
  const { processInfo } = (await session.send("SystemInfo.getProcessInfo")) as unknown as {
    processInfo: ProcessInfo[];
  };
  let largest: number | null = null;
  for (const process of processInfo) {
    if (process.type !== "renderer") continue;
    const rss = residentMiB(process.id);
    if (rss !== null) largest = Math.max(largest ?? 0, rss);
  }
  return largest;
}

function residentMiB(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}
