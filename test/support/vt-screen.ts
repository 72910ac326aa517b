// A small model of a terminal screen, enough for what readline and chat write: printable text (wide
// characters take two cells, a line that reaches the edge wraps), CR, LF, backspace, cursor moves
// (CSI A B C D E G H), erasing (CSI K, CSI J) and colours ignored. Tests feed it a pseudo-terminal's
// output and read the rows a person would see, to tell a clean redraw from a stale row.

import stringWidth from "string-width";

export class VtScreen {
  private readonly lines: string[][] = [[]];
  private row = 0;
  private col = 0;
  /** The cursor is past the last column: the next printable character starts the next row. */
  private pendingWrap = false;

  constructor(private readonly cols: number) {}

  feed(data: string): void {
    const chars = [...data];
    for (let i = 0; i < chars.length; i++) {
      const char = chars[i]!;
      if (char === "\x1b") {
        const next = chars[i + 1];
        if (next === "[") {
          let j = i + 2;
          let params = "";
          while (j < chars.length && !/[@-~]/.test(chars[j]!)) params += chars[j++];
          this.csi(params, chars[j] ?? "");
          i = j;
        } else if (next === "]") {
          // An operating system command (a window title): up to BEL or ESC \.
          let j = i + 2;
          while (j < chars.length && chars[j] !== "\x07" && !(chars[j] === "\x1b" && chars[j + 1] === "\\"))
            j++;
          i = chars[j] === "\x07" ? j : j + 1;
        } else {
          i += 1;
        }
      } else if (char === "\r") {
        this.col = 0;
        this.pendingWrap = false;
      } else if (char === "\n") {
        this.moveTo(this.row + 1, this.col);
      } else if (char === "\b") {
        this.col = Math.max(0, this.col - 1);
        this.pendingWrap = false;
      } else if (char === "\x07" || char < " ") {
        // Bell and other controls draw nothing.
      } else {
        this.print(char);
      }
    }
  }

  /** The rows, trailing spaces trimmed. */
  get rows(): string[] {
    return this.lines.map((cells) => cells.join("").trimEnd());
  }

  private print(char: string): void {
    const width = stringWidth(char);
    if (width === 0) {
      // A combining mark or variation selector joins the cell before it.
      const cells = this.line(this.row);
      const at = Math.max(0, this.col - 1);
      cells[at] = (cells[at] ?? " ") + char;
      return;
    }
    if (this.pendingWrap || this.col + width > this.cols) this.moveTo(this.row + 1, 0);
    const cells = this.line(this.row);
    while (cells.length < this.col) cells.push(" ");
    cells[this.col] = char;
    if (width === 2) cells[this.col + 1] = "";
    this.col += width;
    if (this.col >= this.cols) {
      this.col = this.cols - 1;
      this.pendingWrap = true;
    }
  }

  private csi(params: string, final: string): void {
    if (params.startsWith("?")) return;
    const numbers = params.split(";").map((value) => (value === "" ? NaN : Number(value)));
    const n = Number.isNaN(numbers[0]!) ? 1 : numbers[0]!;
    switch (final) {
      case "A":
        return this.moveTo(Math.max(0, this.row - n), this.col);
      case "B":
        return this.moveTo(this.row + n, this.col);
      case "C":
        return this.moveTo(this.row, Math.min(this.cols - 1, this.col + n));
      case "D":
        return this.moveTo(this.row, Math.max(0, this.col - n));
      case "E":
        return this.moveTo(this.row + n, 0);
      case "G":
        return this.moveTo(this.row, Math.min(this.cols - 1, n - 1));
      case "H": {
        const col = Number.isNaN(numbers[1] ?? NaN) ? 1 : numbers[1]!;
        return this.moveTo(n - 1, col - 1);
      }
      case "K": {
        const mode = Number.isNaN(numbers[0]!) ? 0 : numbers[0]!;
        const cells = this.line(this.row);
        if (mode === 0) cells.length = Math.min(cells.length, this.col);
        else if (mode === 1) for (let c = 0; c <= this.col && c < cells.length; c++) cells[c] = " ";
        else cells.length = 0;
        return;
      }
      case "J": {
        const mode = Number.isNaN(numbers[0]!) ? 0 : numbers[0]!;
        if (mode === 0) {
          const cells = this.line(this.row);
          cells.length = Math.min(cells.length, this.col);
          this.lines.length = this.row + 1;
        } else if (mode === 2 || mode === 3) {
          for (const cells of this.lines) cells.length = 0;
        }
        return;
      }
      default:
        return;
    }
  }

  private moveTo(row: number, col: number): void {
    this.row = row;
    this.col = col;
    this.pendingWrap = false;
    this.line(row);
  }

  private line(row: number): string[] {
    while (this.lines.length <= row) this.lines.push([]);
    return this.lines[row]!;
  }
}
