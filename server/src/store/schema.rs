//! Diesel table definitions; one schema for both backends (migrations/{postgres,sqlite}).

diesel::table! {
    /// Every version of every resource; `is_current` marks the one a read returns.
    resource_versions (seq) {
        seq -> BigInt,
        res_type -> Text,
        res_id -> Text,
        version_id -> BigInt,
        is_current -> Bool,
        deleted -> Bool,
        method -> Text,
        /// Milliseconds since the Unix epoch, UTC.
        last_updated -> BigInt,
        content -> Nullable<Text>,
    }
}

diesel::table! {
    /// Token index rows of current versions.
    search_token (res_type, param, code, system, res_id) {
        res_type -> Text,
        param -> Text,
        code -> Text,
        system -> Text,
        res_id -> Text,
    }
}

diesel::table! {
    /// String index rows (`norm` folded for matching, `exact` as written).
    search_string (res_type, param, norm, res_id) {
        res_type -> Text,
        param -> Text,
        norm -> Text,
        exact -> Text,
        res_id -> Text,
    }
}

diesel::table! {
    /// Date index rows: the covered range in ms since the epoch, both ends inclusive.
    search_date (res_type, param, lo, res_id) {
        res_type -> Text,
        param -> Text,
        lo -> BigInt,
        hi -> BigInt,
        res_id -> Text,
    }
}

diesel::table! {
    /// Number index rows.
    search_number (res_type, param, value, res_id) {
        res_type -> Text,
        param -> Text,
        value -> Double,
        res_id -> Text,
    }
}

diesel::table! {
    /// Quantity index rows (as written, and in the canonical unit where known).
    search_quantity (res_type, param, code, value, res_id) {
        res_type -> Text,
        param -> Text,
        value -> Double,
        system -> Text,
        code -> Text,
        res_id -> Text,
    }
}

diesel::table! {
    /// Reference index rows: a local target, or an absolute `url`.
    search_reference (res_type, param, target_id, target_type, res_id) {
        res_type -> Text,
        param -> Text,
        target_type -> Text,
        target_id -> Text,
        url -> Text,
        res_id -> Text,
    }
}

diesel::table! {
    /// URI index rows.
    search_uri (res_type, param, uri, res_id) {
        res_type -> Text,
        param -> Text,
        uri -> Text,
        res_id -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    personal_qr,
    resource_versions,
    search_token,
    search_string,
    search_date,
    search_number,
    search_quantity,
    search_reference,
    search_uri,
);

diesel::table! {
    /// The personal QR token of a Patient, by its keyed hash (`migrations/*/…_personal_qr`).
    personal_qr (patient_id) {
        patient_id -> Text,
        lookup -> Text,
        sealed -> Text,
        issued_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Access grants of the personal-QR rule (`migrations/*/…_access_grants`).
    access_grants (consent_id) {
        consent_id -> Text,
        patient_id -> Text,
        grantee -> Text,
        kind -> Text,
        starts_at -> BigInt,
        ends_at -> BigInt,
    }
}

diesel::table! {
    /// Secrets the server made for itself.
    server_secrets (name) {
        name -> Text,
        value -> Text,
    }
}
