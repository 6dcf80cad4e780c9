CREATE TABLE `target_state` (
	`target` text PRIMARY KEY NOT NULL,
	`paused_until` integer,
	`pause_reason` text,
	`breaker` text DEFAULT 'closed' NOT NULL,
	`failures` integer DEFAULT 0 NOT NULL,
	`probe_delay_ms` integer,
	`next_probe_at` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `deliveries` ADD `waiting_since` integer;--> statement-breakpoint
ALTER TABLE `deliveries` ADD `caused_by` text;--> statement-breakpoint
CREATE INDEX `deliveries_event` ON `deliveries` (`event_seq`);--> statement-breakpoint
CREATE INDEX `deliveries_caused_by` ON `deliveries` (`caused_by`) WHERE status = 'needs_action';--> statement-breakpoint
ALTER TABLE `events` ADD `occurred_at` integer;--> statement-breakpoint
ALTER TABLE `events` ADD `stale` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `records` ADD `occurred_at` integer;