-- Personal QR tokens (issue 15): at most one per Patient. A scan is looked up by `lookup`,
-- the keyed hash of the token (HMAC-SHA256 under the server's QR secret), never by the
-- token itself; `sealed` is the token encrypted (AES-256-GCM, bound to the Patient) so that
-- its owner can be shown the code again. Rotation replaces the row, revocation deletes it:
-- the old token stops resolving with the same commit. Times in ms since the epoch.
CREATE TABLE personal_qr (
    patient_id TEXT PRIMARY KEY,
    lookup TEXT NOT NULL UNIQUE,
    sealed TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT
);

-- Secrets the server generates for itself when the configuration gives none (the QR
-- secret), shared by every replica on this database.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
