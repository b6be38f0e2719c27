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

diesel::allow_tables_to_appear_in_same_query!(resource_versions, search_token);
