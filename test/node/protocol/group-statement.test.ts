// Membership statements (protocol/group-statement.ts) on their own: the byte layout round trip, a
// FormatError for every malformed field, and each transition rule's refusal. Signatures are not checked
// here (the caller's job); a stand-in signature gives each statement its hash.

import { describe, expect, it } from "vitest";
import { FormatError, concatBytes, sha256, utf8 } from "../../../protocol/bytes.js";
import { membersDigest } from "../../../protocol/envelope.js";
import {
  GENESIS_PREV,
  type GroupChainState,
  type GroupStatement,
  MAX_STATEMENT_BYTES,
  StatementRuleError,
  decodeStatement,
  encodeStatement,
  nextState,
  statementHash,
  statementSigningInput,
} from "../../../protocol/group-statement.js";
import { MAX_RECIPIENTS } from "../../../protocol/limits.js";

const SIGNATURE = new Uint8Array(64).fill(7);

function create(overrides: Partial<GroupStatement> = {}, members = ["alice", "bob"]): GroupStatement {
  return {
    action: "create",
    group: "team",
    epoch: 1,
    prev: GENESIS_PREV,
    at: 1_700_000_000_000,
    by: "alice",
    user: "alice",
    admin: "alice",
    membersDigest: membersDigest(members),
    ...overrides,
  };
}

function hashOf(statement: GroupStatement): Uint8Array {
  return statementHash(encodeStatement(statement), SIGNATURE);
}

function apply(prev: GroupChainState | null, statement: GroupStatement, members?: string[]): GroupChainState {
  return nextState(prev, statement, hashOf(statement), members);
}

/** The state after alice creates team with bob and carol (epoch 1). */
function started(): { state: GroupChainState; statement: GroupStatement } {
  const statement = create({}, ["alice", "bob", "carol"]);
  return { state: apply(null, statement, ["carol", "bob", "alice"]), statement };
}

function after(
  state: GroupChainState,
  overrides: Partial<GroupStatement>,
  members: string[],
): GroupStatement {
  return {
    ...create(),
    action: "add",
    epoch: state.epoch + 1,
    prev: state.hash,
    admin: state.admin,
    membersDigest: membersDigest(members),
    ...overrides,
  };
}

function refusal(fn: () => unknown): StatementRuleError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StatementRuleError) return error;
    throw error;
  }
  throw new Error("expected a StatementRuleError");
}

describe("the statement encoding", () => {
  it("round-trips every field, in the documented layout", () => {
    const statement = create({ epoch: 0x01020304, at: 2 ** 40 + 5, admin: "alice" });
    const bytes = encodeStatement(statement);
    expect(decodeStatement(bytes)).toEqual(statement);
    // version, action, str8 group, u32 epoch, prev, u64 at, str8 by, str8 user, str8 admin, digest
    expect([...bytes.subarray(0, 3)]).toEqual([1, 1, 4]);
    expect([...bytes.subarray(7, 11)]).toEqual([1, 2, 3, 4]);
    expect(bytes.length).toBe(1 + 1 + 5 + 4 + 32 + 8 + 6 + 6 + 6 + 32);
    expect(bytes.length).toBeLessThanOrEqual(MAX_STATEMENT_BYTES);
  });

  it("signs and hashes under their own contexts", () => {
    const bytes = encodeStatement(create());
    expect(statementSigningInput(bytes)).toEqual(concatBytes(utf8("telepound/v1/group-statement\0"), bytes));
    expect(statementHash(bytes, SIGNATURE)).toEqual(
      sha256(concatBytes(utf8("telepound/v1/group-statement-hash\0"), bytes, SIGNATURE)),
    );
    expect(() => statementHash(bytes, new Uint8Array(63))).toThrow(FormatError);
  });

  it("refuses a bad version, action, name, epoch, truncation or trailing byte", () => {
    const bytes = encodeStatement(create());
    const with_ = (at: number, value: number) => {
      const copy = bytes.slice();
      copy[at] = value;
      return copy;
    };
    expect(() => decodeStatement(with_(0, 2))).toThrow(/version/);
    expect(() => decodeStatement(with_(1, 9))).toThrow(/action/);
    expect(() => decodeStatement(with_(3, "T".charCodeAt(0)))).toThrow(/group/);
    expect(() => decodeStatement(encodeStatement(create({ epoch: 0 })))).toThrow(/epoch/);
    expect(() => decodeStatement(encodeStatement(create({ by: "no" })))).toThrow(/by/);
    expect(() => decodeStatement(encodeStatement(create({ user: "UPPER" })))).toThrow(/user/);
    expect(() => decodeStatement(encodeStatement(create({ admin: "x" })))).toThrow(/admin/);
    expect(decodeStatement(encodeStatement(create({ admin: "" }))).admin).toBe("");
    for (let cut = 0; cut < bytes.length; cut++)
      expect(() => decodeStatement(bytes.subarray(0, cut))).toThrow(FormatError);
    expect(() => decodeStatement(concatBytes(bytes, new Uint8Array(1)))).toThrow(/unexpected bytes/);
    expect(() => encodeStatement(create({ prev: new Uint8Array(31) }))).toThrow(FormatError);
  });
});

describe("the transition rules", () => {
  it("create: starts a chain with the creator as admin, over the given members", () => {
    const { state, statement } = started();
    expect(state).toEqual({
      group: "team",
      epoch: 1,
      hash: hashOf(statement),
      members: ["alice", "bob", "carol"],
      admin: "alice",
    });
    expect(
      refusal(() => apply(null, create({ prev: new Uint8Array(32).fill(1) }), ["alice", "bob"])).message,
    ).toMatch(/prev must be 32 zero bytes/);
    expect(refusal(() => apply(null, create({ user: "bob" }), ["alice", "bob"])).message).toMatch(/signer/);
    expect(refusal(() => apply(null, create({ admin: "bob" }), ["alice", "bob"])).message).toMatch(/signer/);
    expect(refusal(() => apply(null, create())).message).toMatch(/member list/);
    expect(refusal(() => apply(null, create({}, ["bob"]), ["bob"])).message).toMatch(
      /creator must be a member/,
    );
    expect(refusal(() => apply(null, create(), ["alice", "bob", "ghost"])).message).toMatch(/digest/);
    const many = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => `member-${i}`).concat("alice");
    expect(refusal(() => apply(null, create({}, many), many)).message).toMatch(/limited/);
  });

  it("create: again only once the group closed, at the next epoch", () => {
    const { state } = started();
    expect(refusal(() => apply(state, create({ epoch: 2 }), ["alice", "bob"])).kind).toBe("stale");
    const closed: GroupChainState = { ...state, members: [], admin: "" };
    expect(
      apply(closed, create({ epoch: 2, by: "bob", user: "bob", admin: "bob" }, ["bob"]), ["bob"]),
    ).toMatchObject({
      epoch: 2,
      admin: "bob",
      members: ["bob"],
    });
    expect(refusal(() => apply(closed, create({ epoch: 3 }), ["alice", "bob"])).kind).toBe("stale");
    expect(
      refusal(() => apply(closed, { ...create({ epoch: 2 }), group: "other" }, ["alice", "bob"])).kind,
    ).toBe("invalid");
  });

  it("add: by the admin, of a non-member, members grow, admin unchanged", () => {
    const { state } = started();
    const add = after(state, { user: "dave" }, ["alice", "bob", "carol", "dave"]);
    expect(apply(state, add)).toMatchObject({
      epoch: 2,
      members: ["alice", "bob", "carol", "dave"],
      admin: "alice",
    });
    expect(refusal(() => apply(state, { ...add, by: "bob" })).kind).toBe("forbidden");
    expect(refusal(() => apply(state, { ...add, admin: "dave" })).message).toMatch(
      /does not change the admin/,
    );
    expect(
      refusal(() => apply(state, after(state, { user: "bob" }, ["alice", "bob", "carol"]))).message,
    ).toMatch(/already a member/);
    expect(
      refusal(() => apply(state, { ...add, membersDigest: membersDigest(["alice", "bob", "carol"]) }))
        .message,
    ).toMatch(/digest/);
    expect(refusal(() => apply(state, add, ["alice", "bob", "carol", "dave", "ghost"])).message).toMatch(
      /member list given/,
    );
    const full: GroupChainState = {
      ...state,
      members: Array.from({ length: MAX_RECIPIENTS }, (_, i) => `member-${i}`)
        .concat("alice")
        .slice(0, MAX_RECIPIENTS),
    };
    expect(
      refusal(() => apply(full, after(full, { user: "dave" }, [...full.members, "dave"]))).message,
    ).toMatch(/limited/);
  });

  it("every change: the next epoch, after the known head, in the same group", () => {
    const { state } = started();
    const add = after(state, { user: "dave" }, ["alice", "bob", "carol", "dave"]);
    expect(refusal(() => apply(state, { ...add, epoch: 3 })).kind).toBe("stale");
    expect(refusal(() => apply(state, { ...add, epoch: 1 })).kind).toBe("stale");
    expect(refusal(() => apply(state, { ...add, prev: new Uint8Array(32).fill(9) })).kind).toBe("stale");
    expect(refusal(() => apply(state, { ...add, group: "other" })).kind).toBe("invalid");
    expect(refusal(() => apply(null, add)).kind).toBe("stale");
    expect(refusal(() => apply({ ...state, members: [], admin: "" }, add)).message).toMatch(/no open group/);
  });

  it("remove: by the admin, of another member", () => {
    const { state } = started();
    const remove = after(state, { action: "remove", user: "carol" }, ["alice", "bob"]);
    expect(apply(state, remove)).toMatchObject({ epoch: 2, members: ["alice", "bob"], admin: "alice" });
    expect(refusal(() => apply(state, { ...remove, by: "bob" })).kind).toBe("forbidden");
    expect(
      refusal(() => apply(state, after(state, { action: "remove", user: "dave" }, ["alice", "bob", "carol"])))
        .message,
    ).toMatch(/not a member/);
    expect(
      refusal(() => apply(state, after(state, { action: "remove", user: "alice" }, ["bob", "carol"])))
        .message,
    ).toMatch(/leave statement/);
  });

  it("leave: by the leaver; a leaving admin names a remaining member; the last closes the group", () => {
    const { state } = started();
    const bobLeaves = after(state, { action: "leave", by: "bob", user: "bob" }, ["alice", "carol"]);
    expect(apply(state, bobLeaves)).toMatchObject({ members: ["alice", "carol"], admin: "alice" });
    expect(refusal(() => apply(state, { ...bobLeaves, user: "carol" })).kind).toBe("forbidden");
    expect(refusal(() => apply(state, { ...bobLeaves, admin: "bob" })).message).toMatch(
      /only a leaving admin/,
    );
    const outsider = after(state, { action: "leave", by: "dave", user: "dave" }, ["alice", "bob", "carol"]);
    expect(refusal(() => apply(state, outsider)).kind).toBe("forbidden");

    const aliceLeaves = after(state, { action: "leave", by: "alice", user: "alice", admin: "carol" }, [
      "bob",
      "carol",
    ]);
    expect(apply(state, aliceLeaves)).toMatchObject({ members: ["bob", "carol"], admin: "carol" });
    expect(refusal(() => apply(state, { ...aliceLeaves, admin: "alice" })).message).toMatch(
      /remaining member/,
    );
    expect(refusal(() => apply(state, { ...aliceLeaves, admin: "dave" })).message).toMatch(
      /remaining member/,
    );

    const alone: GroupChainState = { ...state, members: ["alice"] };
    const last = after(alone, { action: "leave", by: "alice", user: "alice", admin: "" }, []);
    expect(apply(alone, last)).toMatchObject({ members: [], admin: "" });
    expect(refusal(() => apply(alone, { ...last, admin: "alice" })).message).toMatch(/names no admin/);
  });
});
