/** Alarm rules for worker tests: published the way the control plane does, to a prefixed `_gateway.alarm_rules`. */
import { ReliableProducer } from "../../src/kafka/producer.ts";
import { ALARM_RULES_TOPIC, ruleRecordValue } from "../../src/streams/alarms/rule-topic.ts";
import { alarmRuleDefaultsOf, loadAlarmRules, parseAlarmRule } from "../../src/streams/alarms/rules.ts";
import { kafkaConnection } from "./services.ts";

/** The set-wide settings with nothing overridden. */
export const DEFAULT_RULE_SETTINGS = alarmRuleDefaultsOf(loadAlarmRules({}));

/** Writes each rule (checked like the API does) as version 1 to `<prefix>_gateway.alarm_rules`. */
export async function publishAlarmRules(prefix: string, rules: unknown[]): Promise<void> {
  const producer = new ReliableProducer(kafkaConnection(), "test-alarm-rules");
  try {
    await producer.send(
      rules.map((raw) => {
        const rule = parseAlarmRule(raw);
        return { topic: prefix + ALARM_RULES_TOPIC, key: rule.id, value: ruleRecordValue("test-gateway", rule, 1) };
      }),
    );
  } finally {
    await producer.close();
  }
}
