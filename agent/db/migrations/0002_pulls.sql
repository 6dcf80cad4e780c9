CREATE TABLE `cursors` (
	`target` text NOT NULL,
	`stream` text NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`target`, `stream`)
);
--> statement-breakpoint
CREATE TABLE `inbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`seq` integer NOT NULL,
	`target` text NOT NULL,
	`stream` text NOT NULL,
	`remote_id` text NOT NULL,
	`type` text NOT NULL,
	`state` text NOT NULL,
	`requires` text,
	`payload` text NOT NULL,
	`attachment_name` text,
	`attachment_type` text,
	`attachment` blob,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer DEFAULT 0 NOT NULL,
	`error_code` text,
	`error_message` text,
	`error_hint` text,
	`delivered_via` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`delivered_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `inbox_remote` ON `inbox` (`target`,`remote_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `inbox_seq` ON `inbox` (`seq`);--> statement-breakpoint
CREATE INDEX `inbox_state` ON `inbox` (`state`,`seq`);--> statement-breakpoint
CREATE TABLE `job_runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`target` text NOT NULL,
	`stream` text NOT NULL,
	`trigger` text NOT NULL,
	`status` text NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	`pages` integer DEFAULT 0 NOT NULL,
	`fetched` integer DEFAULT 0 NOT NULL,
	`imported` integer DEFAULT 0 NOT NULL,
	`duplicates` integer DEFAULT 0 NOT NULL,
	`ignored` integer DEFAULT 0 NOT NULL,
	`error_code` text,
	`error_message` text,
	`error_hint` text,
	`pid` integer
);
--> statement-breakpoint
CREATE INDEX `job_runs_job` ON `job_runs` (`target`,`stream`,`started_at`);--> statement-breakpoint
CREATE TABLE `pull_status` (
	`target` text NOT NULL,
	`entity` text NOT NULL,
	`key` text NOT NULL,
	`value` text NOT NULL,
	`final` integer DEFAULT false NOT NULL,
	`changes` integer DEFAULT 0 NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`target`, `entity`, `key`)
);
