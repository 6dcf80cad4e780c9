ALTER TABLE `records` ADD `psa_id` text;--> statement-breakpoint
CREATE INDEX `records_psa_id` ON `records` (`psa_id`) WHERE psa_id IS NOT NULL;--> statement-breakpoint
UPDATE `records` SET `psa_id` = json_extract(`payload`, '$.psaId') WHERE `entity` = 'invoice';