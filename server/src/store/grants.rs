//! Access grants of the personal-QR rule: who may see whose compartment until when. The
//! service writes them (with the Consent that records each); the access decision reads
//! them.

use diesel::prelude::*;

use super::queries::Tx;
use super::schema::access_grants;
use super::{DbConnection, StoreError};

/// One grant: `grantee` (`Practitioner/<id>` or `PractitionerRole/<id>`) may see and write
/// the compartment of `Patient/<patient_id>` from `starts_at` until `ends_at` (ms since the
/// epoch).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_grants)]
pub struct GrantRow {
    /// The Consent that records the grant.
    pub consent_id: String,
    pub patient_id: String,
    pub grantee: String,
    /// `qr` (a scan) or `emergency` (break the glass).
    pub kind: String,
    pub starts_at: i64,
    pub ends_at: i64,
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
    /// Records a new grant.
    ///
    /// # Errors
    /// Database failures.
    pub fn grant_put(&mut self, row: &GrantRow) -> Result<(), StoreError> {
        on_backend!(&mut *self.conn, |c| diesel::insert_into(
            access_grants::table
        )
        .values(row)
        .execute(c))?;
        Ok(())
    }

    /// The grant a Consent records.
    ///
    /// # Errors
    /// Database failures.
    pub fn grant(&mut self, consent_id: &str) -> Result<Option<GrantRow>, StoreError> {
        let row = access_grants::table.filter(access_grants::consent_id.eq(consent_id));
        Ok(on_backend!(&mut *self.conn, |c| row
            .select(GrantRow::as_select())
            .first(c)
            .optional())?)
    }

    /// The grants of `grantee` in force at `now`.
    ///
    /// # Errors
    /// Database failures.
    pub fn grants_of_grantee(
        &mut self,
        grantee: &str,
        now: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let rows = access_grants::table
            .filter(access_grants::grantee.eq(grantee))
            .filter(access_grants::ends_at.gt(now))
            .filter(access_grants::starts_at.le(now));
        Ok(on_backend!(&mut *self.conn, |c| rows
            .select(GrantRow::as_select())
            .load(c))?)
    }

    /// The grants to the compartment of `patient_id` in force at `now`.
    ///
    /// # Errors
    /// Database failures.
    pub fn grants_of_patient(
        &mut self,
        patient_id: &str,
        now: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let rows = access_grants::table
            .filter(access_grants::patient_id.eq(patient_id))
            .filter(access_grants::ends_at.gt(now))
            .filter(access_grants::starts_at.le(now));
        Ok(on_backend!(&mut *self.conn, |c| rows
            .order(access_grants::consent_id)
            .select(GrantRow::as_select())
            .load(c))?)
    }

    /// Moves the end of a grant in force to `ends_at` (earlier: it ends; later: it is
    /// extended); whether it was in force at `now`.
    ///
    /// # Errors
    /// Database failures.
    pub fn grant_set_end(
        &mut self,
        consent_id: &str,
        now: i64,
        ends_at: i64,
    ) -> Result<bool, StoreError> {
        let row = access_grants::table
            .filter(access_grants::consent_id.eq(consent_id))
            .filter(access_grants::ends_at.gt(now));
        let changed = on_backend!(&mut *self.conn, |c| diesel::update(row)
            .set(access_grants::ends_at.eq(ends_at))
            .execute(c))?;
        Ok(changed > 0)
    }
}
