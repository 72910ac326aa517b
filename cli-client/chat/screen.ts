// Printing above the line being typed. A typed line longer than the terminal is wide wraps onto more
// rows, and CJK characters and most emoji take two columns each: before a message is printed, the cursor
// goes up to the prompt's first row and everything from there down is cleared, so no stale row is left;
// readline then draws the prompt and the half-typed line again below the message.

import { clearScreenDown, cursorTo, moveCursor } from "node:readline";
import { stripVTControlCharacters } from "node:util";
import stringWidth from "string-width";

/** What readline shows now: the prompt, the line typed so far and the cursor's place in it. */
export interface TypedLine {
  prompt: string;
  line: string;
  cursor: number;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * The row of the cursor below the prompt's first row, in a terminal `columns` wide. A two-column
 * character that would start in the last column goes to the next row instead, leaving that column empty
 * (terminals wrap it whole; readline counts it the same way).
 */
export function cursorRow({ prompt, line, cursor }: TypedLine, columns: number): number {
  if (columns <= 0) return 0;
  let offset = 0;
  // The prompt's colours take no columns; they are taken out whole, before the text is cut into characters.
  for (const { segment } of graphemes.segment(stripVTControlCharacters(prompt + line.slice(0, cursor)))) {
    const width = stringWidth(segment);
    if (width >= 2 && (offset + 1) % columns === 0) offset += 1;
    offset += width;
  }
  return Math.floor(offset / columns);
}

/** Clears the prompt and the typed line, however many rows they take, leaving the cursor at its start. */
export function clearTypedLine(stdout: NodeJS.WriteStream, typed: TypedLine): void {
  const up = cursorRow(typed, stdout.columns ?? 80);
  if (up > 0) moveCursor(stdout, 0, -up);
  cursorTo(stdout, 0);
  clearScreenDown(stdout);
}
