DROP INDEX "inbox_remote";--> statement-breakpoint
ALTER TABLE "inbox" ADD COLUMN "forgotten_at" bigint;--> statement-breakpoint
CREATE UNIQUE INDEX "inbox_remote" ON "inbox" USING btree ("tenant_id","target","remote_id") WHERE forgotten_at IS NULL;