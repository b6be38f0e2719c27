//! Personal QR rows and the server's own secrets. The store keeps what the service hands
//! it (a keyed hash, a sealed token): it never sees a token.

use diesel::prelude::*;

use super::queries::Tx;
use super::schema::{personal_qr, resource_versions as rv, server_secrets};
use super::{DbConnection, ResourceRow, StoreError};

/// The stored QR of one Patient.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = personal_qr)]
pub struct QrRow {
    pub patient_id: String,
    /// Keyed hash of the token.
    pub lookup: String,
    /// The token, encrypted.
    pub sealed: String,
    /// Milliseconds since the epoch.
    pub issued_at: i64,
    pub expires_at: Option<i64>,
}

macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Postgres($c) => $body,
            DbConnection::Sqlite($c) => $body,
        }
    };
}

impl Tx<'_> {
    /// Makes `row` the Patient's QR, replacing the one it had.
    ///
    /// # Errors
    /// Database failures.
    pub fn qr_put(&mut self, row: &QrRow) -> Result<(), StoreError> {
        let old = personal_qr::table.filter(personal_qr::patient_id.eq(&row.patient_id));
        on_backend!(&mut *self.conn, |c| diesel::delete(old).execute(c))?;
        on_backend!(&mut *self.conn, |c| diesel::insert_into(personal_qr::table)
            .values(row)
            .execute(c))?;
        Ok(())
    }

    /// Removes the Patient's QR; whether there was one.
    ///
    /// # Errors
    /// Database failures.
    pub fn qr_delete(&mut self, patient_id: &str) -> Result<bool, StoreError> {
        let row = personal_qr::table.filter(personal_qr::patient_id.eq(patient_id));
        Ok(on_backend!(&mut *self.conn, |c| diesel::delete(row).execute(c))? > 0)
    }

    /// The Patient's QR.
    ///
    /// # Errors
    /// Database failures.
    pub fn qr_of(&mut self, patient_id: &str) -> Result<Option<QrRow>, StoreError> {
        let row = personal_qr::table.filter(personal_qr::patient_id.eq(patient_id));
        Ok(on_backend!(&mut *self.conn, |c| row
            .select(QrRow::as_select())
            .first(c)
            .optional())?)
    }

    /// The QR whose token hashes to `lookup` (the unique index).
    ///
    /// # Errors
    /// Database failures.
    pub fn qr_find(&mut self, lookup: &str) -> Result<Option<QrRow>, StoreError> {
        let row = personal_qr::table.filter(personal_qr::lookup.eq(lookup));
        Ok(on_backend!(&mut *self.conn, |c| row
            .select(QrRow::as_select())
            .first(c)
            .optional())?)
    }

    /// The QR whose token hashes to `lookup` and the current version of its Patient, in one
    /// statement (a scan costs what a read by id costs).
    ///
    /// # Errors
    /// Database failures.
    pub fn qr_find_patient(
        &mut self,
        lookup: &str,
    ) -> Result<Option<(QrRow, ResourceRow)>, StoreError> {
        let query = personal_qr::table
            .inner_join(
                rv::table.on(rv::res_type
                    .eq("Patient")
                    .and(rv::res_id.eq(personal_qr::patient_id))
                    .and(rv::is_current)),
            )
            .filter(personal_qr::lookup.eq(lookup));
        Ok(on_backend!(&mut *self.conn, |c| query
            .select((QrRow::as_select(), ResourceRow::as_select()))
            .first(c)
            .optional())?)
    }

    /// The secret `name`, made by `make` and stored when there is none yet. Replicas that
    /// race all end with the one that was stored first.
    ///
    /// # Errors
    /// Database failures.
    pub fn secret(
        &mut self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let stored = |tx: &mut Self| -> Result<Option<String>, StoreError> {
            let row = server_secrets::table
                .filter(server_secrets::name.eq(name))
                .select(server_secrets::value);
            Ok(on_backend!(&mut *tx.conn, |c| row
                .first::<String>(c)
                .optional())?)
        };
        if let Some(value) = stored(self)? {
            return Ok(value);
        }
        let value = make();
        let insert = diesel::insert_into(server_secrets::table).values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(&value),
        ));
        on_backend!(&mut *self.conn, |c| insert
            .on_conflict_do_nothing()
            .execute(c))?;
        Ok(stored(self)?.unwrap_or(value))
    }
}
