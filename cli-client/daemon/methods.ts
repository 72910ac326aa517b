// The daemon's methods: each is a CLI command, called by name with its arguments as JSON. A method's
// params are checked here (zod, unknown params refused) and turned into the command's own argument
// list, and the command runs as `--json` would run it: its result is the object `--json` prints, its
// failure the exit code and message the CLI would exit with. So the two can never drift apart.

import { z } from "zod";

export interface MethodSpec {
  params: z.ZodType<Record<string, unknown>>;
  /** The command line (after `telepound`) that does what the call asks. */
  argv(params: Record<string, unknown>): string[];
  /** "one": the command's result object; "all": every result it printed, as an array (history). */
  result: "one" | "all";
}

const name = z.string().min(1);
const none = z.strictObject({});

/** A method whose params are exactly `shape`, run as `command` with those positionals in order. */
function positional<Shape extends Record<string, z.ZodString>>(
  command: string[],
  shape: Shape,
  result: "one" | "all" = "one",
): MethodSpec {
  return {
    params: z.strictObject(shape),
    // After "--", a name that starts with "-" is still a name, never an option.
    argv: (params) => [...command, "--", ...Object.keys(shape).map((key) => String(params[key]))],
    result,
  };
}

const send = z
  .strictObject({
    to: name.optional(),
    group: name.optional(),
    text: z.string().default(""),
    file: name.optional(),
  })
  .refine((params) => (params.to === undefined) !== (params.group === undefined), {
    message: 'give exactly one of "to" (a user) and "group"',
  });

const history = z.strictObject({
  user: name.optional(),
  group: name.optional(),
  search: z.string().optional(),
  limit: z.number().int().optional(),
});

export const METHODS: Readonly<Record<string, MethodSpec>> = {
  send: {
    params: send,
    argv: (params) => {
      const { to, group, text, file } = send.parse(params);
      return [
        "send",
        ...(group === undefined ? [] : [`--group=${group}`]),
        ...(file === undefined ? [] : [`--file=${file}`]),
        "--",
        ...(to === undefined ? [] : [to]),
        text,
      ];
    },
    result: "one",
  },
  whoami: { params: none, argv: () => ["whoami"], result: "one" },
  user: positional(["user"], { user: name }),
  verify: {
    params: z.strictObject({ user: name, yes: z.boolean().optional() }),
    argv: (params) => ["verify", ...(params.yes === true ? ["--yes"] : []), "--", String(params.user)],
    result: "one",
  },
  trust: positional(["trust"], { user: name }),
  history: {
    params: history,
    argv: (params) => {
      const { user, group, search, limit } = history.parse(params);
      return [
        "history",
        ...(group === undefined ? [] : [`--group=${group}`]),
        ...(search === undefined ? [] : [`--search=${search}`]),
        ...(limit === undefined ? [] : [`--limit=${limit}`]),
        "--",
        ...(user === undefined ? [] : [user]),
      ];
    },
    result: "all",
  },
  "group.create": {
    params: z.strictObject({ group: name, users: z.array(name).optional() }),
    argv: (params) => ["group", "create", "--", String(params.group), ...((params.users as string[]) ?? [])],
    result: "one",
  },
  "group.add": positional(["group", "add"], { group: name, user: name }),
  "group.remove": positional(["group", "remove"], { group: name, user: name }),
  "group.leave": positional(["group", "leave"], { group: name }),
  "group.info": positional(["group", "info"], { group: name }),
  "group.join": positional(["group", "join"], { group: name }),
  "group.decline": positional(["group", "decline"], { group: name }),
  "group.list": { params: none, argv: () => ["group", "list"], result: "one" },
  "devices.list": { params: none, argv: () => ["devices"], result: "one" },
  "devices.revoke": positional(["devices", "revoke"], { id: name }),
};

/** The method's params checked: the parsed params, or the reasons they are refused (one line). */
export function checkParams(
  method: MethodSpec,
  params: Record<string, unknown>,
): { ok: true; params: Record<string, unknown> } | { ok: false; reason: string } {
  const parsed = method.params.safeParse(params);
  if (parsed.success) return { ok: true, params: parsed.data };
  const reason = parsed.error.issues
    .map((issue) => {
      const where = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
      return `${where}${issue.message}`;
    })
    .join("; ");
  return { ok: false, reason };
}
