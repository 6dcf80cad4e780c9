CREATE TABLE `deliveries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event_seq` integer NOT NULL,
	`target` text NOT NULL,
	`entity` text NOT NULL,
	`key` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`lease_until` integer,
	`uncertain` integer DEFAULT false NOT NULL,
	`waiting_on` text,
	`error_code` text,
	`error_message` text,
	`error_hint` text,
	`error_field` text,
	`note` text,
	`remote_id` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`done_at` integer,
	`latency_ms` integer,
	FOREIGN KEY (`event_seq`) REFERENCES `events`(`seq`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `deliveries_ready` ON `deliveries` (`target`,`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `deliveries_record` ON `deliveries` (`target`,`entity`,`key`,`status`);--> statement-breakpoint
CREATE INDEX `deliveries_waiting` ON `deliveries` (`target`,`waiting_on`) WHERE status = 'waiting';--> statement-breakpoint
CREATE INDEX `deliveries_status` ON `deliveries` (`status`,`updated_at`);--> statement-breakpoint
CREATE TABLE `events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event_id` text NOT NULL,
	`type` text NOT NULL,
	`entity` text NOT NULL,
	`key` text NOT NULL,
	`payload` text NOT NULL,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_event_id` ON `events` (`event_id`);--> statement-breakpoint
CREATE INDEX `events_received` ON `events` (`received_at`);--> statement-breakpoint
CREATE TABLE `links` (
	`target` text NOT NULL,
	`entity` text NOT NULL,
	`key` text NOT NULL,
	`remote_id` text NOT NULL,
	`payload_hash` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`target`, `entity`, `key`)
);
--> statement-breakpoint
CREATE TABLE `records` (
	`entity` text NOT NULL,
	`key` text NOT NULL,
	`payload` text NOT NULL,
	`version` integer NOT NULL,
	`last_event_seq` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`entity`, `key`)
);
--> statement-breakpoint
CREATE TABLE `settings` (
	`name` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
