//! Prometheus metrics at `GET /metrics` (the text exposition format, docs/OPERATIONS.md):
//! requests by route *template*, method and status with their latency, requests in flight
//! and waiting for admission, requests shed by class, clients over their quota, the
//! database pools (connections, idle, acquisitions and time spent waiting for one) and the
//! audit events not yet written. Labels are templates and classes, never values: no
//! patient data, no ids, no query strings.

use actix_web::{web, HttpResponse};
use prometheus::{
    Counter, CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::admission::{Admission, Class};
use super::respond::AppState;
use crate::service::audit::Backlog;
use crate::store::PoolStats;

/// Latency buckets (seconds): 0.25 ms to about 8 s.
const BUCKETS: [f64; 16] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096, 8.192,
];

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    in_flight: IntGauge,
    waiting: IntGauge,
    shed: IntCounterVec,
    limited: IntCounter,
    audit_backlog: IntGauge,
    pool_connections: IntGaugeVec,
    pool_idle: IntGaugeVec,
    pool_acquired: IntCounterVec,
    pool_wait: CounterVec,
    /// The audit queue, read when scraped.
    backlog: Backlog,
}

impl Metrics {
    /// The metrics, reading the audit queue's depth from `backlog`.
    ///
    /// # Panics
    /// Never: the names and labels are fixed and distinct.
    pub fn new(backlog: Backlog) -> Self {
        let registry = Registry::new();
        let requests = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "healthbook_http_request_duration_seconds",
                    "Requests by route template, method and status: count and latency",
                )
                .buckets(BUCKETS.to_vec()),
                &["route", "method", "status"],
            ),
        );
        let in_flight = registered(
            &registry,
            IntGauge::new(
                "healthbook_http_requests_in_flight",
                "FHIR requests admitted and not finished",
            ),
        );
        let waiting = registered(
            &registry,
            IntGauge::new(
                "healthbook_admission_waiting",
                "FHIR requests waiting for room to be admitted",
            ),
        );
        let shed = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "healthbook_admission_shed_total",
                    "Requests answered 503 HB-OVERLOADED, by class (citizen, clinical, ministry)",
                ),
                &["class"],
            ),
        );
        let limited = registered(
            &registry,
            IntCounter::new(
                "healthbook_admission_rate_limited_total",
                "Requests answered 429 HB-RATE-LIMITED (a client over its quota)",
            ),
        );
        let audit_backlog = registered(
            &registry,
            IntGauge::new(
                "healthbook_audit_queue_depth",
                "Audit events recorded and not yet written to the database",
            ),
        );
        let pool_connections = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "healthbook_db_pool_connections",
                    "Open database connections, by pool",
                ),
                &["pool"],
            ),
        );
        let pool_idle = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "healthbook_db_pool_idle_connections",
                    "Idle database connections, by pool",
                ),
                &["pool"],
            ),
        );
        let pool_acquired = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "healthbook_db_pool_acquired_total",
                    "Connections taken from the pool, by pool",
                ),
                &["pool"],
            ),
        );
        let pool_wait = registered(
            &registry,
            CounterVec::new(
                Opts::new(
                    "healthbook_db_pool_wait_seconds_total",
                    "Time spent waiting for a pooled connection, by pool",
                ),
                &["pool"],
            ),
        );
        for class in Class::ALL {
            shed.with_label_values(&[class.label()]);
        }
        Self {
            registry,
            requests,
            in_flight,
            waiting,
            shed,
            limited,
            audit_backlog,
            pool_connections,
            pool_idle,
            pool_acquired,
            pool_wait,
            backlog,
        }
    }

    /// Counts a finished request (`status` as its three digits).
    pub fn observe(&self, route: &str, method: &str, status: &str, seconds: f64) {
        self.requests
            .with_label_values(&[route, known_method(method), status])
            .observe(seconds);
    }

    /// The exposition text, with the values read from admission control, the pools and
    /// the audit queue now.
    pub fn render(&self, admission: &Admission, pools: &[PoolStats]) -> String {
        self.in_flight.set(gauge(admission.in_flight() as u64));
        self.waiting.set(gauge(admission.waiting() as u64));
        for class in Class::ALL {
            catch_up(
                &self.shed.with_label_values(&[class.label()]),
                admission.shed(class),
            );
        }
        catch_up(&self.limited, admission.limited());
        self.audit_backlog
            .set(gauge(self.backlog.unwritten() as u64));
        for pool in pools {
            let label = [pool.name];
            self.pool_connections
                .with_label_values(&label)
                .set(i64::from(pool.connections));
            self.pool_idle
                .with_label_values(&label)
                .set(i64::from(pool.idle));
            catch_up(&self.pool_acquired.with_label_values(&label), pool.acquired);
            let wait: &Counter = &self.pool_wait.with_label_values(&label);
            let seconds = pool.wait_micros as f64 / 1e6;
            if seconds > wait.get() {
                wait.inc_by(seconds - wait.get());
            }
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("writing to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// `metric`, registered in `registry`.
fn registered<M>(registry: &Registry, metric: prometheus::Result<M>) -> M
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = metric.expect("a valid metric: fixed names and labels");
    registry
        .register(Box::new(metric.clone()))
        .expect("distinct metric names");
    metric
}

/// A method label from a fixed set, whatever the request line said.
fn known_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Moves a counter up to `total` (counted elsewhere).
fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

/// `GET /metrics`.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = state
        .metrics
        .render(&state.admission, &state.service.pool_stats());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family is exposed, with route templates and classes as labels.
    #[test]
    fn the_exposition_names_routes_classes_and_pools() {
        let metrics = Metrics::new(Backlog::default());
        metrics.observe("/fhir/{type}/{id}", "GET", "200", 0.003);
        metrics.observe("/fhir/{type}/{id}", "BREW", "404", 0.001);
        let admission = Admission::new(&crate::config::AdmissionSettings {
            max_in_flight: 4,
            citizen_percent: 50,
            clinical_percent: 85,
            queue_wait_ms: 0,
            client_rate: 0,
            client_burst: 0,
        });
        let text = metrics.render(
            &admission,
            &[PoolStats {
                name: "read",
                connections: 3,
                idle: 2,
                acquired: 10,
                wait_micros: 1_500,
            }],
        );
        for line in [
            r#"healthbook_http_request_duration_seconds_count{method="GET",route="/fhir/{type}/{id}",status="200"} 1"#,
            r#"healthbook_http_request_duration_seconds_count{method="other",route="/fhir/{type}/{id}",status="404"} 1"#,
            r#"healthbook_admission_shed_total{class="citizen"} 0"#,
            r#"healthbook_admission_shed_total{class="ministry"} 0"#,
            "healthbook_http_requests_in_flight 0",
            "healthbook_audit_queue_depth 0",
            r#"healthbook_db_pool_connections{pool="read"} 3"#,
            r#"healthbook_db_pool_acquired_total{pool="read"} 10"#,
            r#"healthbook_db_pool_wait_seconds_total{pool="read"} 0.0015"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
