ALTER TABLE "inbox" ADD COLUMN "lease_until" bigint;--> statement-breakpoint
ALTER TABLE "job_runs" ADD COLUMN "slot" bigint;--> statement-breakpoint
ALTER TABLE "job_runs" ADD COLUMN "worker" bigint;--> statement-breakpoint
CREATE UNIQUE INDEX "job_runs_slot" ON "job_runs" USING btree ("tenant_id","target","stream","slot") WHERE slot IS NOT NULL AND status IN ('running', 'ok');--> statement-breakpoint
CREATE UNIQUE INDEX "job_runs_running" ON "job_runs" USING btree ("tenant_id","target","stream") WHERE status = 'running';