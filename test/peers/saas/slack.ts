/**
 * Slack incoming webhook stand-in: `POST <hookPath>` with JSON. Answers like Slack: 200 "ok";
 * 400 "invalid_payload" (not JSON), "no_text" (neither text nor blocks), "invalid_blocks";
 * 404 "no_service" for any other path.
 */
import { startFakeSaas, type FakeSaas } from "./fake.ts";

export const SLACK_HOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

export async function startSlackFake(hookPath = SLACK_HOOK_PATH): Promise<FakeSaas & { webhookUrl: string }> {
  const fake = await startFakeSaas("slack", (req) => {
    const text = (status: number, body: string) => ({ status, body, headers: { "content-type": "text/html" } });
    if (req.method !== "POST" || req.path !== hookPath) return text(404, "no_service");
    const m = req.json as Record<string, unknown> | undefined;
    if (!m || typeof m !== "object" || Array.isArray(m)) return text(400, "invalid_payload");
    const hasText = typeof m.text === "string" && m.text.trim() !== "";
    if (m.blocks !== undefined) {
      if (!Array.isArray(m.blocks) || m.blocks.some((b) => !b || typeof b !== "object" || typeof (b as { type?: unknown }).type !== "string")) return text(400, "invalid_blocks");
    }
    if (!hasText && !Array.isArray(m.blocks)) return text(400, "no_text");
    return text(200, "ok");
  });
  return Object.assign(fake, { webhookUrl: `${fake.url}${hookPath}` });
}
