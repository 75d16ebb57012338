/** HTTP fakes only: the SMTP sink (./smtp.ts) probes for aiosmtpd on import, so it is imported on its own. */
export { startFakeSaas, type FakeSaas, type FakeResponse, type RecordedRequest } from "./fake.ts";
export { startPagerDutyFake } from "./pagerduty.ts";
export { SLACK_HOOK_PATH, startSlackFake } from "./slack.ts";
export { startTwilioFake, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN } from "./twilio.ts";
