CREATE INDEX "alerts_tenant_id" ON "alerts" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "deliveries_tenant_id" ON "deliveries" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "delivery_attempts_tenant_id" ON "delivery_attempts" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "events_tenant_seq" ON "events" USING btree ("tenant_id","seq");--> statement-breakpoint
CREATE INDEX "export_files_tenant_id" ON "export_files" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "export_runs_tenant_id" ON "export_runs" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "inbox_tenant_id" ON "inbox" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "job_runs_tenant_id" ON "job_runs" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "notifications_tenant_id" ON "notifications" USING btree ("tenant_id","id");