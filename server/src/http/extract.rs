//! The [`Access`] of a request, from its `Authorization` header (RFC 6750) and, for a
//! practitioner under the personal-QR rule, their access grants in force. Every FHIR
//! handler takes it, so no path reaches the service without the one access decision.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::admission::Authenticated;
use super::error::ApiError;
use super::respond::AppState;
use crate::service::Access;

impl FromRequest for Access {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Access, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let request = req.clone();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| crate::http::error::internal("no application state"))?;
            // Admission control has verified the token already (every `/fhir` request).
            let known = request.extensions_mut().remove::<Authenticated>();
            let authenticated = match known {
                Some(Authenticated(result)) => result,
                None => {
                    state
                        .authenticator
                        .authenticate(authorization.as_deref())
                        .await
                }
            };
            let access = match authenticated {
                Ok(Some(principal)) => state.service.access_of(Arc::clone(&principal)).await?,
                Ok(None) => Access::Open,
                Err(e) => return Err(ApiError::from(e)),
            };
            // The audit record of this request names who made it.
            request.extensions_mut().insert(access.clone());
            Ok(access)
        })
    }
}
