//! Rows as read from and written to the store.

use diesel::prelude::*;

use super::schema::{resource_versions, search_token};

/// One stored version of a resource.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = resource_versions)]
pub struct ResourceRow {
    /// Global write order, used for history paging.
    pub seq: i64,
    pub res_type: String,
    pub res_id: String,
    pub version_id: i64,
    pub is_current: bool,
    pub deleted: bool,
    /// The HTTP method that made this version (POST, PUT, PATCH, DELETE).
    pub method: String,
    /// Milliseconds since the Unix epoch, UTC.
    pub last_updated: i64,
    /// The resource JSON with id and meta set; `None` for a deletion.
    pub content: Option<String>,
}

/// A version about to be written.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = resource_versions)]
pub struct NewResourceVersion {
    pub res_type: String,
    pub res_id: String,
    pub version_id: i64,
    pub is_current: bool,
    pub deleted: bool,
    pub method: String,
    pub last_updated: i64,
    pub content: Option<String>,
}

/// One token index entry (search.html#token); `system` is empty when absent.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = search_token)]
pub struct NewTokenRow {
    pub res_type: String,
    pub res_id: String,
    pub param: String,
    pub system: String,
    pub code: String,
}
