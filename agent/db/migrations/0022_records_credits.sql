ALTER TABLE `records` ADD `credits` text;--> statement-breakpoint
CREATE INDEX `records_credits` ON `records` (`credits`) WHERE credits IS NOT NULL;--> statement-breakpoint
UPDATE `records` SET `credits` = CAST(json_extract(`payload`, '$.creditedInvoiceNumber') AS TEXT) WHERE `entity` = 'invoice' AND json_extract(`payload`, '$.kind') = 'credit_note';