import { AlarmRuleSchema } from "../../streams/alarms/rules.ts";
import { versionedResourceRoutes } from "../versioned-routes.ts";
import type { AlarmRuleService } from "./service.ts";

export function alarmRuleRoutes(service: AlarmRuleService) {
  return versionedResourceRoutes("/api/v1/alarm-rules", "alarm rules", service, {
    // The body is checked by the service with the rules file's own parser (schema defaults, then the
    // checks the schema cannot express), so the route only documents it. (The cast: TypeBox writes
    // JSON Schema's numeric exclusiveMinimum, the OpenAPI 3.0 types expect a boolean.)
    body: { requestBody: { required: true, content: { "application/json": { schema: AlarmRuleSchema as never } } } },
    list: "Alarm rules of this gateway, paginated, by id",
    create: "Create an alarm rule (id default <asset_id>/<parameter>); an existing id gives 409",
    get: "One alarm rule; the ETag is its version",
    replace: "Create or replace an alarm rule; send If-Match with its ETag for optimistic concurrency",
    remove: "Delete an alarm rule (its versions stay in history); its open alarms clear at the tag's next reading",
    versions: "Rule history, newest first",
  });
}
