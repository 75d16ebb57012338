/**
 * Twilio Programmable Messaging stand-in: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
 * form-encoded To, From, Body, HTTP basic auth AccountSid:AuthToken. Answers like Twilio: 201 with the
 * Message resource (sid "SM…", status "queued"); 401 {code 20003 "Authenticate"} on bad credentials;
 * 400 with Twilio error codes (21211 bad To, 21603 From missing, 21602 Body missing); 404 otherwise.
 */
import { createHash } from "node:crypto";
import { startFakeSaas, type FakeSaas } from "./fake.ts";

export const TEST_ACCOUNT_SID = "AC00000000000000000000000000000001";
export const TEST_AUTH_TOKEN = "test-auth-token-0000000000000000";
const E164 = /^\+[1-9]\d{6,14}$/;

export async function startTwilioFake(accountSid = TEST_ACCOUNT_SID, authToken = TEST_AUTH_TOKEN): Promise<FakeSaas> {
  let n = 0;
  return startFakeSaas("twilio", (req) => {
    const error = (status: number, code: number, message: string) => ({ status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } });
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(req.path);
    if (req.method !== "POST" || !m) return error(404, 20404, "The requested resource was not found");
    const expected = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString("base64")}`;
    if (req.headers.authorization !== expected || decodeURIComponent(m[1]!) !== accountSid) return error(401, 20003, "Authenticate");
    const f = req.form ?? {};
    if (!f.To || !E164.test(f.To)) return error(400, 21211, `The 'To' number ${f.To ?? ""} is not a valid phone number.`);
    if (!f.From) return error(400, 21603, "A 'From' phone number is required.");
    if (!f.Body) return error(400, 21602, "Message body is required.");
    if (f.Body.length > 1600) return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.");
    const sid = `SM${createHash("md5").update(`${++n}:${req.body}`).digest("hex")}`;
    const now = new Date().toUTCString().replace("GMT", "+0000");
    return {
      status: 201,
      body: {
        sid,
        account_sid: accountSid,
        to: f.To,
        from: f.From,
        body: f.Body,
        status: "queued",
        num_segments: String(Math.ceil(f.Body.length / 153) || 1),
        direction: "outbound-api",
        api_version: "2010-04-01",
        date_created: now,
        date_updated: now,
        date_sent: null,
        price: null,
        error_code: null,
        error_message: null,
        uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
      },
    };
  });
}
