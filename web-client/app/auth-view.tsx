// Sign up or log in: the same accounts as the CLI's, on the page's own server. The password never leaves
// the page: the core derives the login key and the key that unseals the private keys from it (scrypt, in
// a Web Worker), as the CLI does.

import { useState } from "hono/jsx/dom";
import { describeError } from "../../client/errors.js";
import type { TelepoundClient } from "../../client/telepound-client.js";
import { normalizeName } from "../../protocol/limits.js";

/** As the CLI asks of a new password. */
const MIN_PASSWORD_LENGTH = 8;
/** How this session is listed by `telepound devices`. */
const DEVICE_NAME = "web browser";

type Mode = "login" | "signup";

export function AuthView(props: {
  client: () => Promise<TelepoundClient>;
  note?: string | undefined;
  onSignedIn: () => Promise<void>;
}) {
  const [mode, setMode] = useState<Mode>("login");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const raw = String(data.get("username") ?? "");
    const password = String(data.get("password") ?? "");
    const username = normalizeName(raw);
    if (!username) return setError(`"${raw}" is not a valid username: use 3–32 of a-z 0-9 _ -`);
    if (mode === "signup") {
      if ([...password].length < MIN_PASSWORD_LENGTH)
        return setError(`the password must be at least ${MIN_PASSWORD_LENGTH} characters long`);
      if (password !== String(data.get("repeat") ?? "")) return setError("the passwords do not match");
    }
    setError(null);
    setBusy(true);
    try {
      const client = await props.client();
      const credentials = { password: async () => password, deviceName: DEVICE_NAME };
      if (mode === "signup") await client.signup(username, credentials);
      else await client.login(username, credentials);
      await props.onSignedIn();
    } catch (failure) {
      setError(describeError(failure).message);
      setBusy(false);
    }
  };

  const title = mode === "signup" ? "Create an account" : "Log in";
  return (
    <section class="auth" aria-labelledby="auth-title">
      <h1>Telepound</h1>
      <p>End-to-end encrypted chat: messages are encrypted in this browser before they leave it.</p>
      {props.note ? <p role="status">{props.note}</p> : null}
      <div class="switch" role="group" aria-label="Account">
        <button type="button" aria-pressed={mode === "login"} onClick={() => setMode("login")}>
          I have an account
        </button>
        <button type="button" aria-pressed={mode === "signup"} onClick={() => setMode("signup")}>
          I am new here
        </button>
      </div>
      <form method="post" onSubmit={submit} aria-labelledby="auth-title">
        <h2 id="auth-title">{title}</h2>
        <label>
          Username
          <input name="username" autocomplete="username" required minLength={3} maxLength={32} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            required
            autocomplete={mode === "signup" ? "new-password" : "current-password"}
          />
        </label>
        {mode === "signup" ? (
          <label>
            Repeat password
            <input name="repeat" type="password" required autocomplete="new-password" />
          </label>
        ) : null}
        <button type="submit" disabled={busy}>
          {mode === "signup" ? "Sign up" : "Log in"}
        </button>
        {busy ? <p role="status">Deriving your keys…</p> : null}
        {error ? <p role="alert">{error}</p> : null}
      </form>
    </section>
  );
}
