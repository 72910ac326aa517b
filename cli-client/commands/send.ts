// telepound send USER [--file PATH] TEXT... | send --group G [--file PATH] TEXT...: seals one message (and
// uploads one encrypted file) for USER or every member of group G; exits 0 once the server has delivered
// the message to a live connection or stored it. A send-only socket, so nothing queued for us is consumed.
// `send USER -` and `send --stdin` take the text (any number of lines) from standard input.

import { UsageError } from "../../client/errors.js";
import { formatBytes, isoTime } from "../output.js";
import { showProgress } from "../progress.js";
import { parseGroupName, parseUsername } from "./args.js";
import type { CommandSpec } from "./command.js";

export const send: CommandSpec = {
  name: "send",
  summary: "send USER (or --group G) a message or --file (exit 0 once the server delivered or stored it)",
  args: [
    { syntax: "[user]", description: "the recipient (left out with --group)" },
    {
      syntax: "[text...]",
      description: 'the message; words are joined with spaces (use -- before text starting with "-")',
    },
  ],
  options: [
    {
      flags: "--group <group>",
      description:
        "send to every verified member of this group instead (a membership change you were not shown yet is printed and exits 10: send again)",
    },
    {
      flags: "--stdin",
      description: 'read the message from standard input, every line of it (also: "-" as the text)',
    },
    {
      flags: "--file <path>",
      description: "attach this file, encrypted (at most 128 MiB; a larger one exits 7 before any upload)",
    },
  ],
  examples: [
    'telepound send bob "see you at 6"',
    'telepound send --group team --file ./notes.pdf "minutes"',
    "telepound send bob --file ./photo.jpg  # a file alone, without text",
    "telepound send bob -- -1 is a number  # after --, words starting with - are text",
    "telepound send bob - < notes.txt  # the text from standard input, every line",
  ],
  async run(ctx, { args, options }) {
    const group = typeof options.group === "string" ? parseGroupName(options.group) : null;
    // With --group every positional word is text; without it the first names the recipient.
    const [rawUser, ...words] = group === null ? args : [undefined, ...args];
    if (group === null && rawUser === undefined) throw new UsageError("send needs a USER or --group G");
    const to = rawUser === undefined ? null : parseUsername(rawUser);
    const fromStdin = options.stdin === true || (words.length === 1 && words[0] === "-");
    if (fromStdin && options.stdin === true && words.length > 0) {
      throw new UsageError("send --stdin takes the text from standard input: give no text words");
    }
    const text = fromStdin ? await readText(ctx.io.stdin) : words.join(" ");
    const path = typeof options.file === "string" ? options.file : undefined;
    if (text.trim() === "" && path === undefined)
      throw new UsageError("nothing to send: the message is empty");
    if (path !== undefined) await showProgress(ctx.client.events, ctx.io.stderr, ctx.printer.json);
    const sent = await ctx.client.send(to !== null ? { user: to } : { group: group! }, { text, file: path });

    const uploaded = sent.file;
    const where = sent.group === undefined ? sent.to : `the group ${sent.group}`;
    const what = uploaded ? `${uploaded.descriptor.name} (${formatBytes(uploaded.descriptor.size)})` : "";
    const human =
      (sent.status === "delivered"
        ? `delivered to ${where}`
        : `stored for ${where} (not connected right now)`) + (what ? `: ${what}` : "");
    ctx.printer.result(human, {
      id: sent.id,
      to: sent.to,
      ...(sent.group === undefined ? {} : { group: sent.group, epoch: sent.epoch }),
      status: sent.status,
      sentAt: isoTime(sent.sentAt),
      ...(uploaded
        ? {
            file: {
              name: uploaded.descriptor.name,
              size: uploaded.descriptor.size,
              sha256: uploaded.plaintextSha256,
              blob: uploaded.descriptor.blob,
            },
          }
        : {}),
    });
  },
};

/** All of standard input as text, without the one newline that ends its last line. */
async function readText(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}
