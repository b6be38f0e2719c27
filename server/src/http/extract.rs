//! The [`Access`] of a request, from its `Authorization` header (RFC 6750). Every FHIR
//! handler takes it, so no path reaches the service without the one access decision.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::error::ApiError;
use super::respond::AppState;
use crate::service::Access;

impl FromRequest for Access {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Access, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::bad_request("no application state"))?;
            match state
                .authenticator
                .authenticate(authorization.as_deref())
                .await
            {
                Ok(Some(principal)) => Ok(Access::Token(Arc::clone(&principal))),
                Ok(None) => Ok(Access::Open),
                Err(e) => Err(ApiError::from(e)),
            }
        })
    }
}
