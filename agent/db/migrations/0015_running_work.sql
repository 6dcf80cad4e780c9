CREATE TABLE `running_work` (
	`id` text PRIMARY KEY NOT NULL,
	`worker` integer,
	`started_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`finished_at` integer,
	`entry` text NOT NULL
);
