CREATE TABLE "running_work" (
	"tenant_id" integer DEFAULT current_setting('kontobro.tenant')::integer NOT NULL,
	"id" text NOT NULL,
	"worker" bigint,
	"started_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"finished_at" bigint,
	"entry" text NOT NULL,
	CONSTRAINT "running_work_pkey" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "running_work" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "running_work" ADD CONSTRAINT "running_work_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE POLICY "running_work_tenant" ON "running_work" AS PERMISSIVE FOR ALL TO public USING (tenant_id = current_setting('kontobro.tenant')::integer) WITH CHECK (tenant_id = current_setting('kontobro.tenant')::integer);