//! Rows as read from and written to the store.

use diesel::prelude::*;

use super::schema::{
    resource_versions, search_date, search_number, search_quantity, search_reference,
    search_string, search_token, search_uri,
};

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

/// One string index entry (search.html#string).
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = search_string)]
pub struct NewStringRow {
    pub res_type: String,
    pub res_id: String,
    pub param: String,
    /// Lower case, accents and marks folded.
    pub norm: String,
    pub exact: String,
}

/// One date index entry (search.html#date): the covered range, ms, both ends inclusive.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = search_date)]
pub struct NewDateRow {
    pub res_type: String,
    pub res_id: String,
    pub param: String,
    pub lo: i64,
    pub hi: i64,
}

/// One number index entry (search.html#number).
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = search_number)]
pub struct NewNumberRow {
    pub res_type: String,
    pub res_id: String,
    pub param: String,
    pub value: f64,
}

/// One quantity index entry (search.html#quantity); system and code empty when absent.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = search_quantity)]
pub struct NewQuantityRow {
    pub res_type: String,
    pub res_id: String,
    pub param: String,
    pub value: f64,
    pub system: String,
    pub code: String,
}

/// One reference index entry (search.html#reference).
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = search_reference)]
pub struct NewReferenceRow {
    pub res_type: String,
    pub res_id: String,
    pub param: String,
    pub target_type: String,
    pub target_id: String,
    pub url: String,
}

/// One URI index entry (search.html#uri).
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = search_uri)]
pub struct NewUriRow {
    pub res_type: String,
    pub res_id: String,
    pub param: String,
    pub uri: String,
}

/// Every index row of one resource version, replaced together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexRows {
    pub tokens: Vec<NewTokenRow>,
    pub strings: Vec<NewStringRow>,
    pub dates: Vec<NewDateRow>,
    pub numbers: Vec<NewNumberRow>,
    pub quantities: Vec<NewQuantityRow>,
    pub references: Vec<NewReferenceRow>,
    pub uris: Vec<NewUriRow>,
}

impl IndexRows {
    /// Adds `other`'s rows (of other resources) to these.
    pub fn append(&mut self, mut other: IndexRows) {
        self.tokens.append(&mut other.tokens);
        self.strings.append(&mut other.strings);
        self.dates.append(&mut other.dates);
        self.numbers.append(&mut other.numbers);
        self.quantities.append(&mut other.quantities);
        self.references.append(&mut other.references);
        self.uris.append(&mut other.uris);
    }

    /// How many rows in all.
    pub fn len(&self) -> usize {
        self.tokens.len()
            + self.strings.len()
            + self.dates.len()
            + self.numbers.len()
            + self.quantities.len()
            + self.references.len()
            + self.uris.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
