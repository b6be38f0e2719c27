//! One handler file per FHIR interaction (named as in http.html) or operation.

pub mod batch;
pub mod capabilities;
pub mod create;
pub mod delete;
pub mod everything;
pub mod health;
pub mod history;
pub mod patch;
pub mod read;
pub mod reindex;
pub mod search;
pub mod smart_configuration;
mod transaction;
pub mod update;
pub mod validate;
pub mod vread;
