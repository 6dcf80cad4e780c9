CREATE TABLE `export_files` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`file_name` text NOT NULL,
	`format` text NOT NULL,
	`encoding` text NOT NULL,
	`period_from` text,
	`period_to` text,
	`bytes` blob NOT NULL,
	`size` integer NOT NULL,
	`sha256` text NOT NULL,
	`row_count` integer NOT NULL,
	`created_at` integer NOT NULL,
	`delivered_at` integer,
	FOREIGN KEY (`run_id`) REFERENCES `export_runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `export_files_run` ON `export_files` (`run_id`);--> statement-breakpoint
CREATE INDEX `export_files_created` ON `export_files` (`created_at`);--> statement-breakpoint
CREATE TABLE `export_runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`template` text,
	`data_type` text NOT NULL,
	`period_from` text,
	`period_to` text,
	`row_count` integer NOT NULL,
	`invoice_count` integer DEFAULT 0 NOT NULL,
	`warnings` text NOT NULL,
	`requested_by` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `export_runs_created` ON `export_runs` (`created_at`);--> statement-breakpoint
CREATE INDEX `export_runs_period` ON `export_runs` (`data_type`,`period_from`,`period_to`);--> statement-breakpoint
CREATE TABLE `export_templates` (
	`name` text PRIMARY KEY NOT NULL,
	`data_type` text NOT NULL,
	`definition` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `invoice_export_status` (
	`invoice_key` text PRIMARY KEY NOT NULL,
	`status` text NOT NULL,
	`changed_at` integer NOT NULL,
	`changed_by` text NOT NULL,
	`export_file_id` integer,
	FOREIGN KEY (`export_file_id`) REFERENCES `export_files`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `invoice_export_status_status` ON `invoice_export_status` (`status`,`invoice_key`);