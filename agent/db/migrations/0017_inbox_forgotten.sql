DROP INDEX `inbox_remote`;--> statement-breakpoint
ALTER TABLE `inbox` ADD `forgotten_at` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `inbox_remote` ON `inbox` (`target`,`remote_id`) WHERE forgotten_at IS NULL;