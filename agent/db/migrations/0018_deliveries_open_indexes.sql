DROP INDEX `deliveries_ready`;--> statement-breakpoint
DROP INDEX `deliveries_record`;--> statement-breakpoint
DROP INDEX `deliveries_status_id`;--> statement-breakpoint
CREATE INDEX `deliveries_ready` ON `deliveries` (`target`,`status`,`next_attempt_at`) WHERE status <> 'done';--> statement-breakpoint
CREATE INDEX `deliveries_record` ON `deliveries` (`target`,`entity`,`key`) WHERE status <> 'done' AND status <> 'superseded';--> statement-breakpoint
CREATE INDEX `deliveries_status_id` ON `deliveries` (`status`,`id`) WHERE status <> 'done';