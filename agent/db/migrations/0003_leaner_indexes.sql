DROP INDEX `deliveries_status`;--> statement-breakpoint
CREATE INDEX `deliveries_status_id` ON `deliveries` (`status`,`id`);--> statement-breakpoint
DROP INDEX `events_received`;