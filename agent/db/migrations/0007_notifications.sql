CREATE TABLE `alerts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`target` text NOT NULL,
	`kind` text NOT NULL,
	`subject` text NOT NULL,
	`code` text,
	`message` text NOT NULL,
	`hint` text,
	`detail` text DEFAULT '{}' NOT NULL,
	`opened_at` integer NOT NULL,
	`resolved_at` integer,
	`resolution` text,
	`opened_batch` integer,
	`resolved_batch` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `alerts_open` ON `alerts` (`target`,`kind`,`subject`) WHERE resolved_at IS NULL;--> statement-breakpoint
CREATE INDEX `alerts_unannounced` ON `alerts` (`target`) WHERE opened_batch IS NULL OR (resolved_at IS NOT NULL AND resolved_batch IS NULL);--> statement-breakpoint
CREATE TABLE `notifications` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`batch` integer NOT NULL,
	`target` text NOT NULL,
	`channel` text NOT NULL,
	`recipients` text,
	`subject` text NOT NULL,
	`body` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`last_error` text,
	`created_at` integer NOT NULL,
	`sent_at` integer
);
--> statement-breakpoint
CREATE INDEX `notifications_due` ON `notifications` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `notifications_target` ON `notifications` (`target`,`created_at`);