DROP INDEX "deliveries_record";--> statement-breakpoint
CREATE INDEX "deliveries_record" ON "deliveries" USING btree ("tenant_id","target","entity","key",(status = 'done' OR status = 'superseded'));