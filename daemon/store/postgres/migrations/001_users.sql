-- otpgate schema version 1: one row per user (and per reserved record such
-- as a remote address's failure state), the record as JSON.
--
-- name sorts bytewise (COLLATE "C"), the order of the embedded store and
-- of List's keyset pagination. record is NULL only inside the transaction
-- that creates the row (Update inserts the row first so that it can lock
-- it); such a row is never committed.
CREATE TABLE otpgate_users (
	name       text COLLATE "C" PRIMARY KEY,
	record     jsonb,
	updated_at timestamptz NOT NULL DEFAULT now()
);
