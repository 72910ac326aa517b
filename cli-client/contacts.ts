// Other users' public keys, trusted on first use: the first keys the server gives us for a user are
// pinned in contacts.json, and from then on the server giving different keys is an error (exit 8),
// because that is exactly what a server reading our messages would have to do.

import type { PublicKeys, UserResponse } from "../protocol/http.js";
import { MAX_RECIPIENTS } from "../protocol/limits.js";
import { type PublicKeyObjects, fingerprint, importPublicKeys } from "./crypto/index.js";
import { KeyMismatchError, NetworkError, NotFoundError } from "./errors.js";
import type { Contact, ContactsFile, Home } from "./home.js";
import type { LoggedIn } from "./session.js";

export interface ResolvedContact {
  username: string;
  publicKeys: PublicKeys;
  keys: PublicKeyObjects;
  fingerprint: string;
  /** ISO 8601: when these keys were pinned. */
  firstSeen: string;
  /** True when this call pinned the keys (first contact). */
  newlyPinned: boolean;
}

export class Contacts {
  /** Parsed keys per user for this process: importing an RSA key each message would be wasted work. */
  private readonly cache = new Map<string, ResolvedContact>();

  constructor(
    private readonly home: Home,
    private readonly me: LoggedIn,
  ) {}

  /** The pinned keys, or (first contact) the server's, pinned now. No server round trip once pinned. */
  async resolve(username: string): Promise<ResolvedContact> {
    const cached = this.cache.get(username);
    if (cached) return cached;
    if (username === this.me.username) return this.remember(this.self());
    // hasOwn: "constructor" is a valid username, and must not find Object.prototype's.
    const { contacts } = await this.load();
    const pinned = Object.hasOwn(contacts, username) ? contacts[username] : undefined;
    if (pinned) return this.remember(toResolved(username, pinned, false));
    return this.lookup(username);
  }

  /** Always asks the server, and checks its answer against the pin (pinning it if there is none). */
  async lookup(username: string): Promise<ResolvedContact> {
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
      return this.remember(self);
    }
    return this.remember((await this.pinAll([answer]))[0]!);
  }

  /**
   * Every name's keys, as resolve() gives them one by one, but with one server request (POST
   * /v1/users/lookup, MAX_RECIPIENTS names at a time) for all the names not pinned yet: what a group
   * message to a thousand members needs. A changed key for any of them throws KeyMismatchError.
   */
  async resolveMany(usernames: readonly string[]): Promise<ResolvedContact[]> {
    const unique = [...new Set(usernames)];
    const pinned = (await this.load()).contacts;
    const unknown = unique.filter(
      (name) => !this.cache.has(name) && name !== this.me.username && !Object.hasOwn(pinned, name),
    );
    for (let i = 0; i < unknown.length; i += MAX_RECIPIENTS) {
      const asked = unknown.slice(i, i + MAX_RECIPIENTS);
      const answer = await this.me.api.lookupUsers(asked);
      if (answer.missing.length > 0) throw new NotFoundError(`no such user: ${answer.missing.join(", ")}`);
      const stray = answer.users.find((user) => !asked.includes(user.username));
      if (stray || answer.users.length !== asked.length) {
        throw new NetworkError(
          `protocol failure: the server's key lookup answered for other users than were asked for`,
        );
      }
      for (const contact of await this.pinAll(answer.users)) this.remember(contact);
    }
    return Promise.all(unique.map((name) => this.resolve(name)));
  }

  /**
   * Pins each user's keys unless already pinned, in one write; a pin that differs throws before anything
   * is written. Keys are imported first: keys that do not even parse must never become the trusted copy.
   */
  private async pinAll(answers: readonly UserResponse[]): Promise<ResolvedContact[]> {
    const imported = answers.map((answer) => ({ answer, keys: importPublicKeys(answer.publicKeys) }));
    return this.home.withLock(async () => {
      const file = await this.load();
      let changed = false;
      const resolved = imported.map(({ answer, keys }): ResolvedContact => {
        const { username } = answer;
        const pin = Object.hasOwn(file.contacts, username) ? file.contacts[username] : undefined;
        if (pin) {
          if (!samePublicKeys(pin.publicKeys, answer.publicKeys)) {
            throw mismatch(username, pin, answer.publicKeys);
          }
          return toResolved(username, pin, false);
        }
        const contact: Contact = {
          publicKeys: answer.publicKeys,
          fingerprint: fingerprint(answer.publicKeys),
          firstSeen: new Date().toISOString(),
        };
        file.contacts[username] = contact;
        changed = true;
        return {
          username,
          publicKeys: contact.publicKeys,
          keys,
          fingerprint: contact.fingerprint,
          firstSeen: contact.firstSeen,
          newlyPinned: true,
        };
      });
      if (changed) await this.home.write("contacts.json", file);
      return resolved;
    });
  }

  private async load(): Promise<ContactsFile> {
    const file = await this.home.read("contacts.json");
    // Pins of a previous user of this home are not ours to trust.
    if (!file || file.owner !== this.me.username) return { owner: this.me.username, contacts: {} };
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
    this.cache.set(contact.username, contact);
    return contact;
  }
}

export function samePublicKeys(a: PublicKeys, b: PublicKeys): boolean {
  return a.encryption === b.encryption && a.signing === b.signing;
}

function toResolved(username: string, contact: Contact, newlyPinned: boolean): ResolvedContact {
  return {
    username,
    publicKeys: contact.publicKeys,
    keys: importPublicKeys(contact.publicKeys),
    fingerprint: contact.fingerprint,
    firstSeen: contact.firstSeen,
    newlyPinned,
  };
}

function mismatch(username: string, pinned: Contact, offered: PublicKeys): KeyMismatchError {
  let offeredPrint: string;
  try {
    offeredPrint = fingerprint(offered);
  } catch {
    offeredPrint = "(unreadable keys)";
  }
  return new KeyMismatchError(
    `KEY MISMATCH for ${username}: the server now gives keys with fingerprint ${offeredPrint}, but the keys pinned for them ` +
      `(fingerprint ${pinned.fingerprint}) were pinned on ${pinned.firstSeen}. Someone may be intercepting your ` +
      `messages; nothing was sent or shown. If ${username} really has new keys, compare fingerprints with them ` +
      `in person, then remove ${username} from contacts.json in your telepound home.`,
  );
}
