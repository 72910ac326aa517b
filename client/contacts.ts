// Other users' public keys, trusted on first use: the first keys the server gives us for a user are
// pinned in contacts.json. Different keys later are a key change, recorded beside the pin and refused
// (exit 8) until the user accepts them with `trust`, because a server reading our messages would have to
// do exactly that. trust.ts holds what the user decides (safety numbers, verify, trust); this file the pins.

import type { PublicKeys, UserResponse } from "../protocol/http.js";
import { MAX_RECIPIENTS } from "../protocol/limits.js";
import { type PublicKeyObjects, fingerprint, importPublicKeys } from "./crypto/index.js";
import { KeyMismatchError, NetworkError, NotFoundError } from "./errors.js";
import type { Contact, ContactsFile, Home } from "./store/home.js";
import type { LoggedIn } from "./session.js";

/** Keys the server gave for a user that differ from the pinned ones, and when we first saw them. */
export interface KeyChange {
  publicKeys: PublicKeys;
  fingerprint: string;
  /** ISO 8601. */
  seenAt: string;
}

export interface ResolvedContact {
  username: string;
  publicKeys: PublicKeys;
  keys: PublicKeyObjects;
  fingerprint: string;
  /** ISO 8601: when these keys were pinned. */
  firstSeen: string;
  /** True when this call pinned the keys (first contact). */
  newlyPinned: boolean;
  /** ISO 8601: when the user marked these keys verified (`verify`); absent if never. */
  verifiedAt?: string;
  /** Present while other keys wait to be accepted (`trust`): nothing may be sent to this user meanwhile. */
  keyChange?: KeyChange;
}

/** What the server gives for a user now, held against the pin. */
export interface KeyCheck {
  /** The pin after the check: made now on first contact, with `keyChange` recorded if the keys differ. */
  contact: ResolvedContact;
  /** The keys the server gives now. */
  offered: PublicKeys;
  /** True when they differ from the pinned keys. */
  changed: boolean;
}

/** How `trust` left a user's pin. */
export type TrustOutcome =
  /** New keys replaced the pin (verification and the key change cleared). */
  | "replaced"
  /** The server gives the pinned keys again: the recorded change was dropped, verification kept. */
  | "restored"
  /** Nothing to accept: the server gives the pinned keys and no change was recorded. */
  | "unchanged"
  /** First contact: there was no pin, these keys are it now. */
  | "pinned";

export const PENDING_CHANGE_CONSEQUENCE =
  "Nothing is sent to them, and messages signed with other keys are held.";

export class Contacts {
  /**
   * Parsed keys per user for this process: importing an RSA key each message would be wasted work. Only
   * contacts without a pending key change: those are read again each time, so a `trust` run meanwhile
   * in another terminal takes effect.
   */
  private readonly cache = new Map<string, ResolvedContact>();
  /** Users whose keys the server confirmed during this process: sending checks each at most once. */
  private readonly confirmed = new Set<string>();

  constructor(
    private readonly home: Home,
    private readonly me: LoggedIn,
  ) {}

  /**
   * Keys to send to: the pinned ones, or (first contact) the server's, pinned now. No server round trip
   * once pinned; a key change recorded earlier refuses with KeyMismatchError.
   */
  async resolve(username: string): Promise<ResolvedContact> {
    return sendable(await this.known(username), "Nothing was sent.");
  }

  /**
   * As resolve(), but asks the server once per process whether the user's keys are still the pinned
   * ones, and refuses (recording the change) if not: how a sender notices a change before sealing.
   */
  async resolveFresh(username: string): Promise<ResolvedContact> {
    const confirmedBefore = this.confirmed.has(username);
    const known = await this.resolve(username);
    if (username === this.me.username) return known;
    // Confirmed by an earlier call of this process: pinned then, if at all, and said so then (chat and
    // the daemon send again and again).
    if (confirmedBefore) return { ...known, newlyPinned: false };
    // Confirmed by this very call: a first contact, pinned just now.
    if (this.confirmed.has(username)) return known;
    return sendable((await this.check(username)).contact, "Nothing was sent.");
  }

  /**
   * Keys to check a received message against: the pinned ones even while a key change is pending (a
   * message they verify is from the user we trusted), or (first contact) the server's, pinned now.
   */
  async resolveForReceiving(username: string): Promise<ResolvedContact> {
    return this.known(username);
  }

  /** Always asks the server, and checks its answer against the pin; a key change throws KeyMismatchError. */
  async lookup(username: string): Promise<ResolvedContact> {
    return sendable((await this.check(username)).contact, PENDING_CHANGE_CONSEQUENCE);
  }

  /**
   * Asks the server for the user's keys and holds them against the pin: pins them on first contact,
   * records a key change (once, in contacts.json) when they differ. Reports the change instead of throwing.
   */
  async check(username: string): Promise<KeyCheck> {
    const answer = await this.me.api.user(username);
    if (answer.username !== username) {
      throw new NetworkError(
        `protocol failure: asked for ${username}, the server answered for ${answer.username}`,
      );
    }
    if (username === this.me.username) {
      const self = this.self();
      if (!samePublicKeys(self.publicKeys, answer.publicKeys)) {
        throw new KeyMismatchError(
          `KEY MISMATCH: the server gives keys for your own account ${username} that differ from the ones in ` +
            `this home (fingerprint ${self.fingerprint}). Someone may be intercepting your messages.`,
        );
      }
      return { contact: this.remember(self), offered: answer.publicKeys, changed: false };
    }
    return (await this.recordAll([answer]))[0]!;
  }

  /**
   * Every name's keys, as resolve() gives them one by one, but with one server request (POST
   * /v1/users/lookup, MAX_RECIPIENTS names at a time) for all the names it has to ask about: what a group
   * message to a thousand members needs. Without `fresh` those are the names not pinned yet; with it,
   * every name not yet confirmed by the server in this process. A key change for any of them (recorded
   * earlier or found now) throws KeyMismatchError.
   */
  async resolveMany(
    usernames: readonly string[],
    { fresh = false }: { fresh?: boolean } = {},
  ): Promise<ResolvedContact[]> {
    const unique = [...new Set(usernames)];
    const file = await this.load();
    const others = unique.filter((name) => name !== this.me.username);
    refuseChanges(
      await Promise.all(
        others.flatMap((name) => {
          const pin = pinOf(file, name);
          return pin?.keyChange ? [toResolved(name, pin, false)] : [];
        }),
      ),
    );
    const toAsk = others.filter((name) =>
      fresh ? !this.confirmed.has(name) : !this.cache.has(name) && !pinOf(file, name),
    );
    for (let i = 0; i < toAsk.length; i += MAX_RECIPIENTS) {
      const asked = toAsk.slice(i, i + MAX_RECIPIENTS);
      const answer = await this.me.api.lookupUsers(asked);
      if (answer.missing.length > 0) throw new NotFoundError(`no such user: ${answer.missing.join(", ")}`);
      const stray = answer.users.find((user) => !asked.includes(user.username));
      if (stray || answer.users.length !== asked.length) {
        throw new NetworkError(
          `protocol failure: the server's key lookup answered for other users than were asked for`,
        );
      }
      refuseChanges(
        (await this.recordAll(answer.users)).flatMap((check) => (check.changed ? [check.contact] : [])),
      );
    }
    return Promise.all(unique.map((name) => this.resolve(name)));
  }

  /**
   * Marks the user's keys verified, if they are still `publicKeys` (the ones the safety number was shown
   * for) and no change is pending; returns when (ISO 8601). Already verified keys keep their date.
   */
  async markVerified(username: string, publicKeys: PublicKeys): Promise<string> {
    const marked = await this.home.withLock(async () => {
      const file = await this.load();
      const pin = pinOf(file, username);
      if (!pin || pin.keyChange || !samePublicKeys(pin.publicKeys, publicKeys)) {
        throw new KeyMismatchError(
          `${username}'s keys changed while the safety number was shown: nothing was marked; run ` +
            `\`telepound verify ${username}\` again`,
        );
      }
      if (pin.verifiedAt === undefined) {
        pin.verifiedAt = new Date().toISOString();
        await this.home.write("contacts.json", file);
      }
      return await toResolved(username, pin, false);
    });
    this.remember(marked);
    return marked.verifiedAt!;
  }

  /**
   * Accepts the keys the server gives for the user now: they replace the pin (a new firstSeen, no
   * verification: new keys have to be verified anew) and the recorded change is dropped.
   */
  async trustCurrentKeys(
    username: string,
  ): Promise<{ outcome: TrustOutcome; contact: ResolvedContact; previous: ResolvedContact | null }> {
    const answer = await this.me.api.user(username);
    if (answer.username !== username) {
      throw new NetworkError(
        `protocol failure: asked for ${username}, the server answered for ${answer.username}`,
      );
    }
    // Keys that do not even parse must never become the trusted copy.
    const keys = await importPublicKeys(answer.publicKeys);
    const result = await this.home.withLock(async () => {
      const file = await this.load();
      const pin = pinOf(file, username);
      const previous = pin ? await toResolved(username, pin, false) : null;
      if (pin && samePublicKeys(pin.publicKeys, answer.publicKeys)) {
        if (!pin.keyChange) return { outcome: "unchanged" as const, contact: previous!, previous };
        delete pin.keyChange;
        await this.home.write("contacts.json", file);
        return {
          outcome: "restored" as const,
          contact: await toResolved(username, pin, false, keys),
          previous,
        };
      }
      const contact: Contact = {
        publicKeys: answer.publicKeys,
        fingerprint: fingerprint(answer.publicKeys),
        firstSeen: new Date().toISOString(),
      };
      file.contacts.set(username, contact);
      await this.home.write("contacts.json", file);
      const outcome: TrustOutcome = pin ? "replaced" : "pinned";
      return { outcome, contact: await toResolved(username, contact, !pin, keys), previous };
    });
    this.remember(result.contact);
    this.confirmed.add(username);
    return result;
  }

  /** The pin (change pending or not), or on first contact the server's keys, pinned now. */
  private async known(username: string): Promise<ResolvedContact> {
    const cached = this.cache.get(username);
    if (cached) return cached;
    if (username === this.me.username) return this.remember(this.self());
    const pin = pinOf(await this.load(), username);
    if (pin) return this.remember(await toResolved(username, pin, false));
    return (await this.check(username)).contact;
  }

  /**
   * Holds each answer against its pin, in one locked read-modify-write of contacts.json: no pin, pinned
   * now; other keys, recorded as a key change (the pin stays, and a change already recorded for the same
   * keys keeps its date). Keys are imported first: keys that do not even parse are never written down.
   */
  private async recordAll(answers: readonly UserResponse[]): Promise<KeyCheck[]> {
    const imported = await Promise.all(
      answers.map(async (answer) => ({ answer, keys: await importPublicKeys(answer.publicKeys) })),
    );
    const checks = await this.home.withLock(async () => {
      const file = await this.load();
      const now = new Date().toISOString();
      let dirty = false;
      const results: KeyCheck[] = [];
      for (const {
        answer: { username, publicKeys },
        keys,
      } of imported) {
        const pin = pinOf(file, username);
        if (!pin) {
          const contact: Contact = { publicKeys, fingerprint: fingerprint(publicKeys), firstSeen: now };
          file.contacts.set(username, contact);
          dirty = true;
          results.push({
            contact: await toResolved(username, contact, true, keys),
            offered: publicKeys,
            changed: false,
          });
          continue;
        }
        const changed = !samePublicKeys(pin.publicKeys, publicKeys);
        if (changed && !(pin.keyChange && samePublicKeys(pin.keyChange.publicKeys, publicKeys))) {
          pin.keyChange = { publicKeys, fingerprint: fingerprint(publicKeys), seenAt: now };
          dirty = true;
        }
        results.push({
          contact: await toResolved(username, pin, false, changed ? undefined : keys),
          offered: publicKeys,
          changed,
        });
      }
      if (dirty) await this.home.write("contacts.json", file);
      return results;
    });
    for (const check of checks) {
      this.remember(check.contact);
      if (!check.changed) this.confirmed.add(check.contact.username);
    }
    return checks;
  }

  private async load(): Promise<ContactsFile> {
    const file = await this.home.read("contacts.json");
    // Pins of a previous user of this home are not ours to trust.
    if (!file || file.owner !== this.me.username) return { owner: this.me.username, contacts: new Map() };
    return file;
  }

  private self(): ResolvedContact {
    const publicKeys = {
      encryption: this.me.exported.encryptionPublic,
      signing: this.me.exported.signingPublic,
    };
    return {
      username: this.me.username,
      publicKeys,
      keys: {
        encryption: this.me.identity.encryption.publicKey,
        signing: this.me.identity.signing.publicKey,
      },
      fingerprint: this.me.fingerprint,
      firstSeen: new Date(0).toISOString(),
      newlyPinned: false,
    };
  }

  private remember(contact: ResolvedContact): ResolvedContact {
    if (contact.keyChange) this.cache.delete(contact.username);
    else this.cache.set(contact.username, contact);
    return contact;
  }
}

export function samePublicKeys(a: PublicKeys, b: PublicKeys): boolean {
  return a.encryption === b.encryption && a.signing === b.signing;
}

/**
 * The loud message every command gives for a pending key change: what changed, that it may be an attack,
 * `consequence` (what this command did not do), and the two commands that resolve it.
 */
export function keyChangeMessage(contact: ResolvedContact, consequence: string): string {
  const { username: name, keyChange } = contact;
  const offered = keyChange
    ? `The server now gives keys with fingerprint ${keyChange.fingerprint} (first seen ${keyChange.seenAt})`
    : "The server gave other keys";
  return (
    `KEY MISMATCH for ${name}: ${name}'s KEYS CHANGED. ${offered}, not the keys pinned on ` +
    `${contact.firstSeen} (fingerprint ${contact.fingerprint}). Either ${name} really has new keys or ` +
    `someone is intercepting your messages. ${consequence} Run \`telepound verify ${name}\` to compare ` +
    `safety numbers with ${name}, then \`telepound trust ${name}\` to accept the new keys.`
  );
}

function sendable(contact: ResolvedContact, consequence: string): ResolvedContact {
  if (contact.keyChange) throw new KeyMismatchError(keyChangeMessage(contact, consequence));
  return contact;
}

/** One error for every contact in `changed`, the first described in full; nothing if it is empty. */
function refuseChanges(changed: readonly ResolvedContact[]): void {
  const [first, ...rest] = changed;
  if (!first) return;
  const others =
    rest.length === 0
      ? ""
      : ` The keys of ${rest.map((contact) => contact.username).join(", ")} changed too.`;
  throw new KeyMismatchError(keyChangeMessage(first, `Nothing was sent.${others}`));
}

/** A Map: "__proto__" and "constructor" are valid usernames, and must find their own pins only. */
function pinOf(file: ContactsFile, username: string): Contact | undefined {
  return file.contacts.get(username);
}

async function toResolved(
  username: string,
  contact: Contact,
  newlyPinned: boolean,
  keys?: PublicKeyObjects,
): Promise<ResolvedContact> {
  return {
    username,
    publicKeys: contact.publicKeys,
    keys: keys ?? (await importPublicKeys(contact.publicKeys)),
    fingerprint: contact.fingerprint,
    firstSeen: contact.firstSeen,
    newlyPinned,
    ...(contact.verifiedAt === undefined ? {} : { verifiedAt: contact.verifiedAt }),
    ...(contact.keyChange === undefined ? {} : { keyChange: contact.keyChange }),
  };
}
