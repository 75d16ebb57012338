CREATE TABLE "alarm_rules" (
	"id" text PRIMARY KEY NOT NULL,
	"gateway_id" text NOT NULL,
	"rule" jsonb NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "config_versions" DROP CONSTRAINT "config_versions_resource_type_check";--> statement-breakpoint
ALTER TABLE "alarm_rules" ADD CONSTRAINT "alarm_rules_gateway_id_gateways_id_fk" FOREIGN KEY ("gateway_id") REFERENCES "public"."gateways"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "alarm_rules_gateway_id_idx" ON "alarm_rules" USING btree ("gateway_id");--> statement-breakpoint
ALTER TABLE "config_versions" ADD CONSTRAINT "config_versions_resource_type_check" CHECK ("config_versions"."resource_type" in ('pipeline', 'gateway', 'sink', 'alarm_rule'));