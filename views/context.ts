import { can, type Permission } from "../src/auth/permissions.ts";
import type { AuthService, Principal } from "../src/auth/service.ts";
import type { HealthProbe } from "../src/api/health/service.ts";
import type { SinkService } from "../src/api/sinks/service.ts";
import type { StreamStage } from "../src/api/topology/service.ts";
import type { ApplianceConfig } from "../src/config/schema.ts";
import type { Db } from "../src/db/client.ts";
import type { LiveServices } from "../src/live/index.ts";
import type { Logger } from "../src/log/logger.ts";
import type { RunningSinkState } from "../src/sinks/appliance.ts";
import type { Supervisor } from "../src/supervisor/supervisor.ts";

/** What the web UI needs from the appliance; `live` is absent where no Kafka tail runs (API tests). */
export interface UiDeps {
  config: ApplianceConfig;
  auth: AuthService;
  db: () => Db;
  supervisor: Supervisor;
  probes: HealthProbe[];
  log: Logger;
  live?: LiveServices;
  stages?: () => StreamStage[];
  /** The sinks this appliance runs now (from its config file and the control DB). */
  runningSinks?: () => RunningSinkState[];
  /** Connection tests of sinks (the Sinks page's button); absent where none can run. */
  sinkService?: SinkService;
  /** Applies a saved pipeline change now rather than at the next reconcile tick. */
  reconcileNow?: () => Promise<void>;
}

/** The signed-in user of one request, as pages need it. */
export interface Viewer {
  principal: Principal;
  /** Echoed by htmx in the x-csrf-token header (double submit; see src/api/guard.ts). */
  csrf: string;
  path: string;
  gatewayId: string;
}

export const viewerCan = (viewer: Viewer, permission: Permission) => can(viewer.principal.role, permission);
