-- 002: what each scored transaction was, why it was flagged, and which upload it came from
-- (issue 15). Written by db_writer from the same `scoring` message as the score, so the
-- details and the score are one record and cannot disagree. Every column is NULL for the rows
-- stored before this migration (and for messages of an older detector without the
-- `transaction` block or without the upload headers); those rows still read.
--   transaction_time  transaction.transaction_time ("YYYY-MM-DD HH:MM:SS", no time zone)
--   amount            transaction.amount
--   merchant, category, city, us_state   transaction.merch, .cat_id, .one_city, .us_state
--   customer_name     transaction.name_1 || ' ' || transaction.name_2
--   reasons           the message's `reasons` member (TreeSHAP contributions), as is
--   upload_id, upload_row   the Kafka headers upload_id (UUID) and upload_row (1-based row)
-- ADD COLUMN without a default changes no stored row: the upgrade is quick on a large table.
ALTER TABLE transactions
    ADD COLUMN transaction_time timestamp,
    ADD COLUMN amount double precision,
    ADD COLUMN merchant text,
    ADD COLUMN category text,
    ADD COLUMN customer_name text,
    ADD COLUMN city text,
    ADD COLUMN us_state text,
    ADD COLUMN reasons jsonb,
    ADD COLUMN upload_id uuid,
    ADD COLUMN upload_row integer;

-- "The results of my upload" in the file's row order (the CSV download, the flagged rows).
CREATE INDEX transactions_upload_idx ON transactions (upload_id, upload_row)
    WHERE upload_id IS NOT NULL;
