//! Healthbook: a FHIR R4 (4.0.1) personal health record server.
//!
//! Layers: `http` (actix-web, the only module that knows HTTP) → `service` (FHIR
//! semantics) → `store` (diesel over PostgreSQL and SQLite).

pub mod auth;
pub mod config;
pub mod http;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
