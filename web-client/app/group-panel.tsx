// A group's members as the server has them, its chain verified first (client.groupInfo): who is admin,
// who is invited, and for the admin the add and remove controls; for everyone, leaving.

import { useEffect, useState } from "hono/jsx/dom";
import type { GroupInfo } from "../../protocol/http.js";
import type { ChatModel } from "./chat-model.js";
import { parseUsername } from "./names.js";
import { name } from "./words.js";

export function GroupPanel(props: { model: ChatModel; group: string; me: string; lines: number }) {
  const { model, group, me } = props;
  const [info, setInfo] = useState<GroupInfo | null>(null);
  const [open, setOpen] = useState(false);

  // Read again when the panel opens and whenever the conversation changes (a member added or removed).
  useEffect(() => {
    if (!open) return;
    let current = true;
    model.groupInfo(group).then(
      (answer) => current && setInfo(answer),
      (error: unknown) => current && model.failed(error),
    );
    return () => {
      current = false;
    };
  }, [open, group, props.lines]);

  const act = async (action: () => Promise<GroupInfo | void>) => {
    try {
      const answer = await action();
      if (answer) setInfo(answer);
    } catch (error) {
      model.failed(error);
    }
  };

  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)}>
        Members
      </button>
    );
  }
  const admin = info?.admin === me;
  return (
    <div class="members" role="region" aria-label={`Members of ${group}`}>
      {!info || info.name !== group ? (
        <p role="status">Checking the group…</p>
      ) : (
        <>
          <ul aria-label="Members">
            {info.members.map((member) => (
              <li key={member.username}>
                {name(member.username)}
                {member.username === info.admin ? " (admin)" : ""}
                {admin && member.username !== me ? (
                  <button
                    type="button"
                    aria-label={`Remove ${member.username}`}
                    onClick={() => act(() => model.removeMember(group, member.username))}
                  >
                    Remove
                  </button>
                ) : null}
              </li>
            ))}
          </ul>
          {info.invited.length > 0 ? (
            <ul aria-label="Invited">
              {info.invited.map((user) => (
                <li key={user}>
                  {name(user)} (invited)
                  {admin ? (
                    <button
                      type="button"
                      aria-label={`Withdraw the invitation of ${user}`}
                      onClick={() => act(() => model.removeMember(group, user))}
                    >
                      Withdraw
                    </button>
                  ) : null}
                </li>
              ))}
            </ul>
          ) : null}
          {admin ? (
            <form
              aria-label="Add a member"
              onSubmit={(event: Event) => {
                event.preventDefault();
                const form = event.currentTarget as HTMLFormElement;
                const raw = String(new FormData(form).get("user") ?? "");
                void act(async () => {
                  const answer = await model.addMember(group, parseUsername(raw));
                  form.reset();
                  return answer;
                });
              }}
            >
              <label>
                Username to add
                <input name="user" required autocomplete="off" />
              </label>
              <button type="submit">Add member</button>
            </form>
          ) : null}
        </>
      )}
      <button type="button" onClick={() => act(() => model.leaveGroup(group))}>
        Leave group
      </button>
      <button type="button" onClick={() => setOpen(false)}>
        Hide members
      </button>
    </div>
  );
}
