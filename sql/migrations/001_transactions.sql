-- 001: the scored transactions, one row per transaction_id, written by db_writer.
-- created_at is set once, when the row is first stored (clock_timestamp, so rows of one
-- batch keep their insertion order); a replayed message hits ON CONFLICT DO NOTHING and
-- changes nothing. transaction_id uses the "C" collation: byte order, the same on every
-- server whatever its locale, and the cheapest comparisons for the primary key.
CREATE TABLE transactions (
    transaction_id text COLLATE "C" PRIMARY KEY,
    score double precision NOT NULL,
    fraud_flag smallint NOT NULL CHECK (fraud_flag IN (0, 1)),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- "Latest N scores" (the histogram): ORDER BY created_at DESC, transaction_id DESC LIMIT N.
CREATE INDEX transactions_latest_idx ON transactions (created_at DESC, transaction_id DESC);

-- "Latest fraud" (the table of the 10 latest flagged rows): a partial index, small.
CREATE INDEX transactions_latest_fraud_idx ON transactions (created_at DESC, transaction_id DESC)
    WHERE fraud_flag = 1;
