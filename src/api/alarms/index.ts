import { Elysia, t } from "elysia";
import { ALARM_STATES, type OperatorAction } from "../../streams/alarms/lifecycle.ts";
import { actorOf } from "../principal.ts";
import { parseList, SEVERITIES, STATE_FILTERS, type AlarmService } from "./service.ts";

const ListQuery = t.Object({
  state: t.Optional(t.String({ description: `comma-separated: ${ALARM_STATES.join(", ")}, or "open" (not CLEARED)` })),
  severity: t.Optional(t.String({ description: `comma-separated: ${SEVERITIES.join(", ")}` })),
  asset_id: t.Optional(t.String({ minLength: 1 })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: t.Optional(t.Integer({ minimum: 0, default: 0 })),
});
const Note = t.Optional(t.String({ maxLength: 2000, description: "free text, kept with the command and in the audit log" }));
const AckBody = t.Optional(t.Object({ note: Note }, { additionalProperties: false }));
const SuppressBody = t.Optional(
  t.Object({ until: t.Optional(t.String({ format: "date-time", description: "end of the suppression (ISO 8601); omitted = until unsuppressed" })), note: Note }, { additionalProperties: false }),
);

const DETAIL = {
  acknowledge: "Acknowledge an ACTIVE alarm",
  suppress: "Suppress (shelve) an ACTIVE or ACKNOWLEDGED alarm, optionally until a time",
  unsuppress: "End a suppression",
} satisfies Record<OperatorAction, string>;
const WAITS = "; waits (≤ ~5 s) for the alarm evaluator's outcome: 200 with the alarm, 409 naming the reason, else 202 Accepted (still queued).";
const DESCRIPTION =
  "Checked against the read model (an invalid transition is a 409 at once), then sent to the alarm evaluator (alarms.commands) with a fresh `command_id`, " +
  "and the answer waits for the evaluator's outcome (alarms.command_outcomes), at most `http.alarm_command_wait_ms` (5 s by default). " +
  "**200**: applied; the body is the alarm in its new state. **409**: the evaluator refused it, because the alarm changed in the meantime (cleared, or acknowledged by someone else); " +
  "`error.message` is the lifecycle's reason, e.g. `cannot acknowledge alarm X: it is CLEARED`, and the refusal is in the audit log (`alarm.<action>.refused`). " +
  "**202**: no outcome in time (evaluator stopped, edge offline): `{ status: \"accepted\", command_id, message, command, alarm }`; the command stays queued in Kafka and applies when the evaluator reads it.";
const ERROR_BODY = { description: "`{ error: { code, message, fields? } }`" };
const RESPONSES = {
  200: { description: "Applied: the alarm after the transition" },
  202: { description: "No outcome within the wait: `{ status: \"accepted\", command_id, message, command, alarm }`; the command is still queued" },
  404: { ...ERROR_BODY, description: "No such alarm. " + ERROR_BODY.description },
  409: { ...ERROR_BODY, description: "Refused, by the read model's state or by the evaluator (`invalid_transition`; `unknown_alarm` when the evaluator has no such alarm). " + ERROR_BODY.description },
  422: { ...ERROR_BODY, description: "Bad `until`. " + ERROR_BODY.description },
  503: { ...ERROR_BODY, description: "No Kafka producer here, or Kafka unreachable: nothing was sent. " + ERROR_BODY.description },
};
const commandDetail = (action: OperatorAction) => ({ summary: DETAIL[action] + WAITS, description: DESCRIPTION, responses: RESPONSES });

export function alarmRoutes(service: AlarmService) {
  const act = (action: OperatorAction) => async (ctx: { params: { id: string }; body?: { until?: string | undefined; note?: string | undefined } | null | undefined; set: { status?: number | string } }) => {
    const reply = await service.command(ctx.params.id, action, ...actorOf(ctx), ctx.body ?? {});
    ctx.set.status = reply.status;
    return reply.status === 200 ? reply.alarm : { status: "accepted", command_id: reply.command.command_id, message: reply.message, command: reply.command, alarm: reply.alarm };
  };
  return new Elysia({ prefix: "/api/v1/alarms", detail: { tags: ["alarms"] } })
    .get(
      "/",
      ({ query }) =>
        service.list({
          state: parseList("state", query.state, STATE_FILTERS),
          severity: parseList("severity", query.severity, SEVERITIES),
          ...(query.asset_id ? { asset_id: query.asset_id } : {}),
          limit: query.limit ?? 50,
          offset: query.offset ?? 0,
        }),
      { query: ListQuery, detail: { summary: "Alarms from the read model, newest raise first; filter by state, severity, asset" } },
    )
    .get("/:id", ({ params }) => service.get(params.id), { detail: { summary: "One alarm" } })
    .post("/:id/ack", act("acknowledge"), { body: AckBody, detail: commandDetail("acknowledge") })
    .post("/:id/suppress", act("suppress"), { body: SuppressBody, detail: commandDetail("suppress") })
    .post("/:id/unsuppress", act("unsuppress"), { body: AckBody, detail: commandDetail("unsuppress") });
}
