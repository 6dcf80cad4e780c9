ALTER TABLE "records" ADD COLUMN "credits" text;--> statement-breakpoint
CREATE INDEX "records_credits" ON "records" USING btree ("tenant_id","credits") WHERE credits IS NOT NULL;