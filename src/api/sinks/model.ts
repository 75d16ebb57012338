import { Type, type Static } from "@sinclair/typebox";

/**
 * A POST or PUT body. `config` is checked by the service with the appliance's own sink parser, as
 * in the config file's `sinks:`, so here it only has to be an object.
 */
export const SinkBodySchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "Display name; default the sink_id" })),
    enabled: Type.Optional(Type.Boolean({ description: "Default true" })),
    config: Type.Record(Type.String(), Type.Unknown(), {
      description: "The sink config exactly as `gateway sink` takes it (sink_id, type, kafka, batch, retry, dlq, target); kafka.bootstrap defaults to the appliance's brokers",
    }),
  },
  { additionalProperties: false },
);
export type SinkBody = Static<typeof SinkBodySchema>;
