//! Admission control: a surge is shed before it hurts (docs/OPERATIONS.md).
//!
//! A bounded number of FHIR requests are in flight at once. Each request belongs to a
//! class that follows the mission: **citizen** (apps of `patient/` tokens, and requests
//! without a token), **clinical** (`user/` tokens: practitioners, vaccination sites) and
//! **ministry** (`system/` tokens: backend services). A class is admitted while the requests
//! in flight are below its share of the bound (citizen 50%, clinical 85%, ministry all of
//! it, by default), so when the server is saturated citizen traffic is shed first and the
//! ministry last. A request that finds no room waits at most `queue_wait_ms` for some, in a
//! bounded queue; then it is answered at once with 503 `HB-OVERLOADED` and `Retry-After`
//! (RFC 9110 §15.6.4, §10.2.3; FHIR http.html: every error an OperationOutcome), never
//! queued without end. A client over its quota (`client_rate` requests per second,
//! keyed by its token's `client_id`, else by its address) gets 429 `HB-RATE-LIMITED` with
//! `Retry-After` (RFC 6585 §4). Shed requests touch no data: they are counted (metrics) and
//! logged when shedding starts and stops, not audited.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;

use super::error::ApiError;
use super::respond::AppState;
use crate::auth::scopes::ScopeContext;
use crate::auth::{AuthError, Principal};
use crate::config::AdmissionSettings;
use crate::service::ErrorCode;

/// Seconds a shed request is asked to wait before it retries.
const SHED_RETRY_AFTER_SECS: u32 = 2;
/// Shedding is over once nothing was shed for this long (for the log line).
const QUIET: Duration = Duration::from_secs(1);
/// Clients whose quota is remembered at most before idle ones are forgotten.
const MAX_CLIENTS: usize = 100_000;

/// Who a request serves, in the order they are shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `patient/` tokens and requests without a token (citizen apps).
    Citizen,
    /// `user/` tokens (practitioners, vaccination sites).
    Clinical,
    /// `system/` tokens (the ministry's backend services).
    Ministry,
}

impl Class {
    /// Every class, in the order they are shed.
    pub const ALL: [Class; 3] = [Class::Citizen, Class::Clinical, Class::Ministry];

    /// The class of a request made with `principal`'s token: its widest scope context.
    pub fn of(principal: Option<&Principal>) -> Self {
        let Some(principal) = principal else {
            return Class::Citizen;
        };
        let contexts = || principal.scopes.grants.iter().map(|g| g.context);
        if contexts().any(|c| c == ScopeContext::System) {
            Class::Ministry
        } else if contexts().any(|c| c == ScopeContext::User) {
            Class::Clinical
        } else {
            Class::Citizen
        }
    }

    /// The label of the class in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Class::Citizen => "citizen",
            Class::Clinical => "clinical",
            Class::Ministry => "ministry",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What admission control found verifying the request's token, taken over by the `Access`
/// extractor so that a token (valid or not) is verified once per request.
pub struct Authenticated(pub Result<Option<Arc<Principal>>, AuthError>);

/// The bound, the queue, the quotas and the counts of shed requests.
pub struct Admission {
    /// In flight at most, per class (a class is admitted while fewer are in flight).
    limits: [usize; 3],
    wait: Duration,
    max_waiting: usize,
    in_flight: AtomicUsize,
    /// Requests waiting for room, by class, and the signal that room was given back (to
    /// one waiter of the highest class that may take it).
    waiting: [AtomicUsize; 3],
    released: [Notify; 3],
    shed: [AtomicU64; 3],
    limited: AtomicU64,
    shedding: AtomicBool,
    /// Milliseconds since `started` of the last shed request.
    last_shed_ms: AtomicU64,
    started: Instant,
    quota: Option<DefaultKeyedRateLimiter<String>>,
}

impl Admission {
    /// From `[admission]`; a `max_in_flight` of 0 is 64 per CPU core.
    pub fn new(settings: &AdmissionSettings) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let max = if settings.max_in_flight == 0 {
            64 * cores
        } else {
            settings.max_in_flight
        };
        let share = |percent: u8| (max * usize::from(percent.min(100)) / 100).max(1);
        let quota = NonZeroU32::new(settings.client_rate).map(|rate| {
            let burst = NonZeroU32::new(settings.client_burst).unwrap_or(rate);
            RateLimiter::dashmap(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limits: [
                share(settings.citizen_percent),
                share(settings.clinical_percent),
                max,
            ],
            wait: Duration::from_millis(settings.queue_wait_ms),
            max_waiting: max,
            in_flight: AtomicUsize::new(0),
            waiting: Default::default(),
            released: Default::default(),
            shed: Default::default(),
            limited: AtomicU64::new(0),
            shedding: AtomicBool::new(false),
            last_shed_ms: AtomicU64::new(0),
            started: Instant::now(),
            quota,
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests waiting for room now.
    pub fn waiting(&self) -> usize {
        self.waiting.iter().map(|w| w.load(Ordering::Relaxed)).sum()
    }

    /// Requests of `class` shed (503) since start.
    pub fn shed(&self, class: Class) -> u64 {
        self.shed[class.index()].load(Ordering::Relaxed)
    }

    /// Requests refused for their client's quota (429) since start.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// The in-flight bound of each class.
    pub fn limit(&self, class: Class) -> usize {
        self.limits[class.index()]
    }

    /// `None` when `client` is within its quota, else the time until it is.
    fn over_quota(&self, client: &str) -> Option<Duration> {
        let quota = self.quota.as_ref()?;
        if quota.len() > MAX_CLIENTS {
            quota.retain_recent();
        }
        match quota.check_key(&client.to_owned()) {
            Ok(()) => None,
            Err(not_until) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                Some(not_until.wait_time_from(DefaultClock::default().now()))
            }
        }
    }

    /// Room for a request of `class`, waiting for it at most the configured time; `None`
    /// when the request is shed.
    pub async fn enter(self: &Arc<Self>, class: Class) -> Option<Permit> {
        if self.try_enter(class) {
            self.quiet_again();
            return Some(Permit(Arc::clone(self)));
        }
        let admitted = !self.wait.is_zero() && self.wait_for_room(class).await;
        if admitted {
            return Some(Permit(Arc::clone(self)));
        }
        self.shed[class.index()].fetch_add(1, Ordering::Relaxed);
        self.last_shed_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
        if !self.shedding.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                class = class.label(),
                in_flight = self.in_flight(),
                limit = self.limit(class),
                "admission: shedding started (503 HB-OVERLOADED)"
            );
        }
        None
    }

    async fn wait_for_room(&self, class: Class) -> bool {
        let waiting = &self.waiting[class.index()];
        if self.waiting() >= self.max_waiting {
            return false;
        }
        waiting.fetch_add(1, Ordering::AcqRel);
        let deadline = tokio::time::Instant::now() + self.wait;
        let admitted = loop {
            let released = self.released[class.index()].notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.try_enter(class) {
                break true;
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                break self.try_enter(class);
            }
        };
        waiting.fetch_sub(1, Ordering::AcqRel);
        admitted
    }

    fn try_enter(&self, class: Class) -> bool {
        let limit = self.limit(class);
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Logs the end of shedding once nothing was shed for a while.
    fn quiet_again(&self) {
        if self.shedding.load(Ordering::Relaxed)
            && self
                .elapsed_ms()
                .saturating_sub(self.last_shed_ms.load(Ordering::Relaxed))
                >= QUIET.as_millis() as u64
            && self.shedding.swap(false, Ordering::AcqRel)
        {
            tracing::info!(
                shed_citizen = self.shed(Class::Citizen),
                shed_clinical = self.shed(Class::Clinical),
                shed_ministry = self.shed(Class::Ministry),
                "admission: shedding stopped (totals since start)"
            );
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A request's room in flight; given back when dropped.
pub struct Permit(Arc<Admission>);

impl Drop for Permit {
    /// Gives the room back, and wakes one waiter of the highest class that may take it.
    fn drop(&mut self) {
        let admission = &self.0;
        let left = admission.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        for class in Class::ALL.into_iter().rev() {
            if left < admission.limit(class)
                && admission.waiting[class.index()].load(Ordering::Acquire) > 0
            {
                admission.released[class.index()].notify_one();
                break;
            }
        }
    }
}

/// A response that was not admitted (the audit middleware skips it: no data was touched).
#[derive(Debug, Clone, Copy)]
pub struct Shed;

/// The middleware (wrap with `actix_web::middleware::from_fn`): FHIR requests are
/// authenticated, classed, checked against their client's quota and admitted or shed;
/// the health endpoints and `/metrics` always pass.
///
/// # Errors
/// Only what the wrapped service returns.
pub async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| req.path().starts_with("/fhir")) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let authenticated = state.authenticator.authenticate(authorization).await;
    // A token that does not verify is answered 401 by the handler's extractor; admission
    // treats its request as one without a token.
    let principal = authenticated.as_ref().ok().cloned().flatten();
    req.extensions_mut().insert(Authenticated(authenticated));
    let class = Class::of(principal.as_deref());
    let client = match principal.as_deref() {
        Some(p) => p.client().to_owned(),
        None => peer(&req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
    };
    if let Some(wait) = state.admission.over_quota(&client) {
        let seconds = u32::try_from(wait.as_secs() + 1).unwrap_or(u32::MAX);
        let mut error = ApiError::new(ErrorCode::RateLimited, ErrorCode::RateLimited.info().doc);
        error.retry_after = Some(seconds);
        return Ok(refused(req, &error));
    }
    match state.admission.enter(class).await {
        Some(permit) => {
            let response = next.call(req).await;
            drop(permit);
            response.map(ServiceResponse::map_into_boxed_body)
        }
        None => {
            let mut error = ApiError::new(ErrorCode::Overloaded, ErrorCode::Overloaded.info().doc);
            error.retry_after = Some(SHED_RETRY_AFTER_SECS);
            Ok(refused(req, &error))
        }
    }
}

fn refused(req: ServiceRequest, error: &ApiError) -> ServiceResponse<BoxBody> {
    let mut response = error.error_response();
    response.extensions_mut().insert(Shed);
    req.into_response(response)
}

/// The address of the peer (a proxy in front of the server is one client: configure the
/// quota there, or leave it off).
fn peer(req: &ServiceRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: usize, wait_ms: u64) -> Arc<Admission> {
        Arc::new(Admission::new(&AdmissionSettings {
            max_in_flight: max,
            citizen_percent: 50,
            clinical_percent: 75,
            queue_wait_ms: wait_ms,
            client_rate: 0,
            client_burst: 0,
        }))
    }

    /// Citizens fill half the bound, practitioners three quarters, the ministry all of it;
    /// past its share a class is shed, and room given back admits again.
    #[tokio::test]
    async fn each_class_is_admitted_up_to_its_share() {
        let admission = admission(8, 0);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(admission.enter(Class::Citizen).await.expect("room"));
        }
        assert!(admission.enter(Class::Citizen).await.is_none());
        for _ in 0..2 {
            held.push(admission.enter(Class::Clinical).await.expect("room"));
        }
        assert!(admission.enter(Class::Clinical).await.is_none());
        for _ in 0..2 {
            held.push(admission.enter(Class::Ministry).await.expect("room"));
        }
        assert!(admission.enter(Class::Ministry).await.is_none());
        assert_eq!(admission.in_flight(), 8);
        assert_eq!(
            Class::ALL.map(|c| admission.shed(c)),
            [1, 1, 1],
            "one shed per class"
        );
        held.truncate(3);
        assert_eq!(admission.in_flight(), 3);
        assert!(admission.enter(Class::Citizen).await.is_some());
    }

    /// A request that finds no room waits for a permit given back within the queue wait,
    /// and is shed once the wait is over.
    #[tokio::test]
    async fn a_request_waits_for_room_within_the_queue_wait() {
        let admission = admission(2, 200);
        let first = admission.enter(Class::Ministry).await.expect("room");
        let _second = admission.enter(Class::Ministry).await.expect("room");
        let waiter = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.enter(Class::Ministry).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(admission.waiting(), 1);
        drop(first);
        let _third = waiter
            .await
            .unwrap()
            .expect("admitted once room was given back");
        let started = Instant::now();
        assert!(admission.enter(Class::Ministry).await.is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(admission.waiting(), 0);
    }

    /// Room given back goes to the highest class waiting: the ministry's request before
    /// the citizen's that waited longer.
    #[tokio::test]
    async fn room_given_back_goes_to_the_highest_class_waiting() {
        let admission = admission(2, 300);
        let first = admission.enter(Class::Ministry).await.expect("room");
        let _second = admission.enter(Class::Ministry).await.expect("room");
        let waiter = |class| {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.enter(class).await })
        };
        let citizen = waiter(Class::Citizen);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let ministry = waiter(Class::Ministry);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(admission.waiting(), 2);
        drop(first);
        let _third = ministry.await.unwrap().expect("the ministry first");
        assert!(citizen.await.unwrap().is_none(), "the citizen is shed");
    }

    #[test]
    fn a_client_over_its_quota_is_told_when_to_come_back() {
        let admission = Admission::new(&AdmissionSettings {
            max_in_flight: 8,
            citizen_percent: 50,
            clinical_percent: 85,
            queue_wait_ms: 0,
            client_rate: 2,
            client_burst: 2,
        });
        assert!(admission.over_quota("app").is_none());
        assert!(admission.over_quota("app").is_none());
        let wait = admission.over_quota("app").expect("over the quota");
        assert!(wait <= Duration::from_secs(1));
        assert!(admission.over_quota("other").is_none());
        assert_eq!(admission.limited(), 1);
    }
}
