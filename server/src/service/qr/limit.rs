//! Failed lookups per client: a flood of unknown or misread codes is someone scanning the
//! token space. Each client (the token's client id or subject; the peer address without a
//! token) may fail `max` times in a fixed window of a minute; then every lookup of that
//! client is refused until the window ends. Kept in memory per replica (docs/QR.md): a
//! client spreading over n replicas gets n × max.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Clients remembered at most; older windows are dropped first when it is reached.
const MAX_CLIENTS: usize = 100_000;

/// The failed lookups of each client in its current window.
#[derive(Debug)]
pub struct LookupLimit {
    max: u32,
    clients: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LookupLimit {
    /// At most `max` failures per client and minute (0: no limit).
    pub fn new(max: u32) -> Self {
        Self {
            max,
            clients: Mutex::default(),
        }
    }

    /// `None` when `client` may look up now, else the seconds until it may.
    pub fn refused(&self, client: &str) -> Option<u32> {
        if self.max == 0 {
            return None;
        }
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, failures) = clients.get(client)?;
        let left = WINDOW.checked_sub(start.elapsed())?;
        (*failures >= self.max).then(|| u32::try_from(left.as_secs() + 1).unwrap_or(60))
    }

    /// Counts a failed lookup of `client`.
    pub fn failed(&self, client: &str) {
        if self.max == 0 {
            return;
        }
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(client) {
            clients.retain(|_, (start, _)| start.elapsed() < WINDOW);
            if clients.len() >= MAX_CLIENTS {
                return;
            }
        }
        let entry = clients
            .entry(client.to_owned())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_refused_after_max_failures_and_others_are_not() {
        let limit = LookupLimit::new(3);
        for _ in 0..3 {
            assert_eq!(limit.refused("a"), None);
            limit.failed("a");
        }
        let wait = limit.refused("a").expect("refused");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(limit.refused("b"), None);
        assert_eq!(LookupLimit::new(0).refused("a"), None);
    }
}
