// The web client's top level: finds out whether this browser's home has a session, then shows the
// sign-up / log-in form or the chat. The server is always the page's own origin.

import { useEffect, useRef, useState } from "hono/jsx/dom";
import { AuthError, describeError } from "../../client/errors.js";
import { TelepoundClient } from "../../client/telepound-client.js";
import { AuthView } from "./auth-view.js";
import { ChatModel } from "./chat-model.js";
import { ChatView } from "./chat-view.js";
import { HOME, type BrowserServices } from "./services.js";

type Phase =
  | { name: "loading" }
  | { name: "signed-out"; note?: string }
  | { name: "signed-in"; model: ChatModel }
  | { name: "failed"; message: string };

export function App({ services, server }: { services: BrowserServices; server: string }) {
  const [phase, setPhase] = useState<Phase>({ name: "loading" });
  const client = useRef<TelepoundClient | null>(null);

  const openClient = async (): Promise<TelepoundClient> => {
    client.current ??= await TelepoundClient.open(services.platform, {
      home: HOME,
      server,
      serverChosen: true,
    });
    return client.current;
  };

  const enter = async (): Promise<void> => {
    const opened = await openClient();
    const model = await ChatModel.open(opened, services, HOME);
    model.start();
    setPhase({ name: "signed-in", model });
  };

  useEffect(() => {
    (async () => {
      try {
        await (await openClient()).session();
      } catch (error) {
        if (error instanceof AuthError) return setPhase({ name: "signed-out" });
        throw error;
      }
      await enter();
    })().catch((error: unknown) => setPhase({ name: "failed", message: describeError(error).message }));
  }, []);

  switch (phase.name) {
    case "loading":
      return <p role="status">Opening Telepound…</p>;
    case "failed":
      return (
        <section class="failed">
          <h1>Telepound</h1>
          <p role="alert">Telepound could not start: {phase.message}</p>
        </section>
      );
    case "signed-out":
      return (
        <AuthView
          client={openClient}
          note={phase.note}
          onSignedIn={async () => {
            await enter();
          }}
        />
      );
    case "signed-in":
      return (
        <ChatView
          model={phase.model}
          onLogout={async () => {
            await phase.model.logout(HOME);
            client.current = null;
            setPhase({
              name: "signed-out",
              note: "Logged out: this browser's copy of your keys and messages is gone.",
            });
          }}
        />
      );
  }
}
