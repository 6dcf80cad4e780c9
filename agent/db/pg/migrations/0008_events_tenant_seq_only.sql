DROP INDEX "alerts_tenant_id";--> statement-breakpoint
DROP INDEX "deliveries_tenant_id";--> statement-breakpoint
DROP INDEX "delivery_attempts_tenant_id";--> statement-breakpoint
DROP INDEX "export_files_tenant_id";--> statement-breakpoint
DROP INDEX "export_runs_tenant_id";--> statement-breakpoint
DROP INDEX "inbox_tenant_id";--> statement-breakpoint
DROP INDEX "job_runs_tenant_id";--> statement-breakpoint
DROP INDEX "notifications_tenant_id";