ALTER TABLE `inbox` ADD `lease_until` integer;--> statement-breakpoint
ALTER TABLE `job_runs` ADD `slot` integer;--> statement-breakpoint
ALTER TABLE `job_runs` ADD `worker` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `job_runs_slot` ON `job_runs` (`target`,`stream`,`slot`) WHERE slot IS NOT NULL AND status IN ('running', 'ok');--> statement-breakpoint
CREATE UNIQUE INDEX `job_runs_running` ON `job_runs` (`target`,`stream`) WHERE status = 'running';