-- One row that the health check (`/healthz`) writes, at most once a
-- second: a commit that goes through proves the database takes writes,
-- which a read or a rolled-back transaction would not.
CREATE TABLE health_probe (
    id         INTEGER NOT NULL PRIMARY KEY,
    checked_ms BIGINT  NOT NULL
);
