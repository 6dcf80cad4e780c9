CREATE TABLE "database_history" (
	"id" integer PRIMARY KEY NOT NULL,
	"system_identifier" text,
	"database_oid" bigint,
	"table_oid" bigint,
	"timeline" integer,
	"incarnation" text NOT NULL,
	"replaced_incarnation" text,
	"generation" bigint DEFAULT 0 NOT NULL,
	"checked_at" timestamp with time zone
);
