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
const WAITS = "; 200 with the alarm once the read model shows it (≤ ~5 s), else 202 Accepted. An invalid transition is a 409 naming the reason.";

export function alarmRoutes(service: AlarmService) {
  const act = (action: OperatorAction) => async (ctx: { params: { id: string }; body?: { until?: string | undefined; note?: string | undefined } | null | undefined; set: { status?: number | string } }) => {
    const reply = await service.command(ctx.params.id, action, ...actorOf(ctx), ctx.body ?? {});
    ctx.set.status = reply.status;
    return reply.status === 200 ? reply.alarm : { status: "accepted", message: "the command was sent; the alarm will show it shortly", command: reply.command, alarm: reply.alarm };
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
    .post("/:id/ack", act("acknowledge"), { body: AckBody, detail: { summary: DETAIL.acknowledge + WAITS } })
    .post("/:id/suppress", act("suppress"), { body: SuppressBody, detail: { summary: DETAIL.suppress + WAITS } })
    .post("/:id/unsuppress", act("unsuppress"), { body: AckBody, detail: { summary: DETAIL.unsuppress + WAITS } });
}
