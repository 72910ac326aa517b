// The safety number with one contact (PROTOCOL §3.7): the same 60 digits on both sides when each has the
// other's real keys. Compared in person or on a trusted call, then marked verified (as `telepound verify`).

import { useState } from "hono/jsx/dom";
import type { SafetyReport } from "../../client/trust.js";
import type { ChatModel } from "./chat-model.js";
import { name } from "./words.js";

export function SafetyPanel(props: { model: ChatModel; user: string; keyChanged: boolean }) {
  const { model, user } = props;
  const [report, setReport] = useState<SafetyReport | null>(null);
  const [open, setOpen] = useState(false);

  const show = async () => {
    try {
      setReport(await model.safetyNumber(user));
      setOpen(true);
    } catch (error) {
      model.failed(error);
    }
  };

  if (!open || !report || report.username !== user) {
    return (
      <button type="button" onClick={show}>
        Safety number
      </button>
    );
  }
  const digits = report.safetyNumber.split(" ");
  const rows = [0, 4, 8].map((start) => digits.slice(start, start + 4).join(" "));
  return (
    <div class="safety" role="region" aria-label={`Safety number with ${user}`}>
      <p>
        {report.keyChange
          ? `Safety number with ${name(user)}'s NEW keys (not accepted yet):`
          : `Safety number with ${name(user)}: compare it with the one ${name(user)} sees.`}
      </p>
      <pre class="digits" aria-label="Safety number">
        {rows.join("\n")}
      </pre>
      <p>
        Key fingerprint: <code>{report.fingerprint}</code>
      </p>
      {report.keyChange ? (
        <p>Previously pinned fingerprint: {report.keyChange.pinnedFingerprint}</p>
      ) : report.verifiedAt === null ? (
        <p>
          {name(user)} is not verified yet.{" "}
          <button
            type="button"
            onClick={async () => {
              try {
                await model.markVerified(report);
                setReport({ ...report });
              } catch (error) {
                model.failed(error);
              }
            }}
          >
            Mark {name(user)} as verified
          </button>
        </p>
      ) : (
        <p>
          {name(user)} verified on {new Date(report.verifiedAt).toLocaleString()}
        </p>
      )}
      <button type="button" onClick={() => setOpen(false)}>
        Hide safety number
      </button>
    </div>
  );
}
