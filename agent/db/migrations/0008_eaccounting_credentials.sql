CREATE TABLE `credentials` (
	`target` text PRIMARY KEY NOT NULL,
	`issuer` text NOT NULL,
	`client_id` text NOT NULL,
	`refresh_token` text,
	`access_token` text,
	`access_expires_at` integer,
	`scope` text,
	`state` text NOT NULL,
	`problem` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `master_records` (
	`target` text NOT NULL,
	`entity` text NOT NULL,
	`key` text NOT NULL,
	`remote_id` text NOT NULL,
	`name` text,
	`fingerprint` text,
	`pending_fingerprint` text,
	`modified_at` text,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`target`, `entity`, `key`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `master_records_remote` ON `master_records` (`target`,`entity`,`remote_id`);--> statement-breakpoint
CREATE TABLE `master_reports` (
	`target` text NOT NULL,
	`entity` text NOT NULL,
	`key` text NOT NULL,
	`kind` text NOT NULL,
	`side` text NOT NULL,
	`message` text NOT NULL,
	`hint` text,
	`count` integer DEFAULT 1 NOT NULL,
	`first_at` integer NOT NULL,
	`last_at` integer NOT NULL,
	`resolved_at` integer,
	PRIMARY KEY(`target`, `entity`, `key`, `kind`)
);
--> statement-breakpoint
CREATE INDEX `master_reports_open` ON `master_reports` (`target`,`last_at`) WHERE resolved_at IS NULL;