-- Access grants of the personal-QR rule (issue 15, docs/QR.md): a practitioner (by the
-- fhirUser of their token, `Practitioner/<id>` or `PractitionerRole/<id>`) may see and
-- write one person's compartment from `starts_at` until `ends_at` (ms since the epoch).
-- Written by the server only: by a scan of the person's QR (kind 'qr') or by an emergency
-- access (kind 'emergency'); each grant is also the FHIR Consent `consent_id`, which the
-- person reads and ends. The access decision reads this table, never a Consent a client
-- could have written. Ending a grant sets `ends_at` to the time it ended.
CREATE TABLE access_grants (
    consent_id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    grantee TEXT NOT NULL,
    kind TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL
);
-- A practitioner's grants in force (every request of theirs asks).
CREATE INDEX access_grants_grantee ON access_grants (grantee, ends_at);
-- A person's grants (ended together when they rotate or revoke their QR).
CREATE INDEX access_grants_patient ON access_grants (patient_id, ends_at);
