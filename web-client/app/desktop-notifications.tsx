// Optional desktop notifications: asked for only when the user presses the button (browsers refuse a
// permission prompt nobody asked for), and shown only for a message that is not already on screen. They
// name the sender, never the text: lock screens show notifications to passers-by.

import { useEffect, useState } from "hono/jsx/dom";
import type { ChatModel } from "./chat-model.js";
import { name } from "./words.js";

const supported = typeof Notification !== "undefined";

export function DesktopNotifications({ model }: { model: ChatModel }) {
  const [permission, setPermission] = useState<NotificationPermission>(
    supported ? Notification.permission : "denied",
  );

  useEffect(() => {
    model.onIncoming = (message, onScreen) => {
      if (permission !== "granted" || (onScreen && !document.hidden)) return;
      const where = message.group === undefined ? "" : ` in ${name(message.group)}`;
      new Notification("Telepound", {
        body: `New message from ${name(message.from)}${where}`,
        tag: message.id,
      });
    };
    return () => {
      model.onIncoming = () => undefined;
    };
  }, [model, permission]);

  if (!supported) return null;
  if (permission === "granted") return <p class="notifications">Desktop notifications on</p>;
  if (permission === "denied")
    return <p class="notifications">Desktop notifications blocked by the browser</p>;
  return (
    <button type="button" onClick={async () => setPermission(await Notification.requestPermission())}>
      Enable desktop notifications
    </button>
  );
}
