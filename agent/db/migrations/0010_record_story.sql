CREATE TABLE `delivery_attempts` (
	`id` integer PRIMARY KEY NOT NULL,
	`delivery_id` integer NOT NULL,
	`attempt` integer NOT NULL,
	`at` integer NOT NULL,
	`outcome` text NOT NULL,
	`code` text,
	`message` text,
	`hint` text,
	`remote_id` text
);
--> statement-breakpoint
CREATE INDEX `delivery_attempts_delivery` ON `delivery_attempts` (`delivery_id`);--> statement-breakpoint
ALTER TABLE `inbox` ADD `record` text;--> statement-breakpoint
CREATE INDEX `inbox_record` ON `inbox` (`record`) WHERE record IS NOT NULL;--> statement-breakpoint
CREATE INDEX `events_record` ON `events` (`entity`,`key`);--> statement-breakpoint
UPDATE `inbox` SET `record` = `requires` WHERE `requires` IS NOT NULL;--> statement-breakpoint
UPDATE `inbox` SET `record` = 'invoice:' || json_extract(`payload`, '$.invoiceNumber') WHERE `record` IS NULL AND `type` LIKE 'invoice.%' AND json_extract(`payload`, '$.invoiceNumber') IS NOT NULL;
