-- When an account's last connection ended (milliseconds since the epoch;
-- 0: never), so that on its return it is shown what it missed.
ALTER TABLE accounts ADD COLUMN last_seen_ms BIGINT NOT NULL DEFAULT 0;
