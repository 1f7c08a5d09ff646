-- Client certificates registered to accounts (NickServ CERT), by their
-- SHA-256 fingerprint in lowercase hex: SASL EXTERNAL logs a connection
-- showing one in to its account. A fingerprint belongs to one account.
CREATE TABLE account_certificates (
    fingerprint TEXT    NOT NULL PRIMARY KEY,
    account     TEXT    NOT NULL REFERENCES accounts (name_folded) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);

CREATE INDEX account_certificates_by_account ON account_certificates (account);
