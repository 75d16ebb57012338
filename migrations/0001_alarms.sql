CREATE TABLE "alarms" (
	"alarm_id" text PRIMARY KEY NOT NULL,
	"asset_id" text NOT NULL,
	"parameter" text NOT NULL,
	"type" text NOT NULL,
	"severity" text NOT NULL,
	"state" text NOT NULL,
	"raised_at" timestamp with time zone NOT NULL,
	"acked_at" timestamp with time zone,
	"acked_by" text,
	"cleared_at" timestamp with time zone,
	"suppressed_until" timestamp with time zone,
	"suppressed_by" text,
	"message" text DEFAULT '' NOT NULL,
	"value" jsonb,
	"threshold" double precision,
	"unit" text,
	"sequence" integer NOT NULL,
	"last_event" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "alarms_state_raised_idx" ON "alarms" USING btree ("state","raised_at");--> statement-breakpoint
CREATE INDEX "alarms_asset_idx" ON "alarms" USING btree ("asset_id","raised_at");--> statement-breakpoint
CREATE INDEX "alarms_raised_idx" ON "alarms" USING btree ("raised_at");