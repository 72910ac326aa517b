// Tab completion for chat's line: the command names at the start of a line, then what each command takes
// (users for /msg, /verify, /add, /remove and /create's members; groups for /group, /join, /decline and
// /create's name is new, so nothing). readline calls `complete` with the line up to the cursor.

/** The commands chat knows, for completion and for /help. */
export const CHAT_COMMANDS = [
  "/msg",
  "/group",
  "/reply",
  "/list",
  "/create",
  "/add",
  "/remove",
  "/join",
  "/decline",
  "/leave",
  "/members",
  "/file",
  "/history",
  "/verify",
  "/reconnect",
  "/help",
  "/quit",
] as const;

const TAKES_USERS = new Set(["/msg", "/verify", "/add", "/remove"]);
const TAKES_GROUP = new Set(["/group", "/join", "/decline"]);

export interface CompletionSources {
  users: () => readonly string[];
  groups: () => readonly string[];
}

/** readline's completer: the candidates for the word before the cursor, and that word. */
export function complete(line: string, sources: CompletionSources): [string[], string] {
  const words = line.split(/\s+/);
  const word = words[words.length - 1] ?? "";
  const command = words[0] ?? "";
  let candidates: readonly string[] = [];
  if (words.length === 1) {
    candidates = word.startsWith("/") ? CHAT_COMMANDS : [];
  } else if (TAKES_USERS.has(command) && words.length === 2) {
    candidates = sources.users();
  } else if (TAKES_GROUP.has(command) && words.length === 2) {
    candidates = sources.groups();
  } else if (command === "/create" && words.length > 2) {
    candidates = sources.users();
  }
  const hits = [...new Set(candidates)].filter((candidate) => candidate.startsWith(word)).sort();
  // One hit gets a space after it, so the next word can follow at once.
  return [hits.length === 1 ? [`${hits[0]} `] : hits, word];
}
