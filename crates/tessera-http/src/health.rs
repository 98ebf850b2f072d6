//! What `GET /health` reports: 200 `{"status":"OK"}` while every part of the process is up,
//! 503 with each part's state while one is starting, stopping or down.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

/// The state of one part of a process (the REST API, a consumer, a worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartState {
    /// Being started.
    Starting,
    /// Running.
    Up,
    /// Asked to stop.
    Stopping,
    /// Stopped, failed or never started; with the reason.
    Down(String),
}

impl fmt::Display for PartState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Starting => f.write_str("starting"),
            Self::Up => f.write_str("up"),
            Self::Stopping => f.write_str("stopping"),
            Self::Down(reason) => write!(f, "down: {reason}"),
        }
    }
}

/// The states of a process's parts, shared by the runtime that sets them and the `/health`
/// route that reads them. Cheap to clone. Empty (a stack used without a runtime) is healthy.
#[derive(Debug, Clone, Default)]
pub struct Health {
    parts: Arc<RwLock<BTreeMap<String, PartState>>>,
}

impl Health {
    /// A registry without parts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the state of `part`.
    pub fn set(&self, part: &str, state: PartState) {
        let mut parts = self
            .parts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        parts.insert(part.to_owned(), state);
    }

    /// The state of `part`, if it was ever set.
    pub fn get(&self, part: &str) -> Option<PartState> {
        self.read().get(part).cloned()
    }

    /// Whether every part is up.
    pub fn is_up(&self) -> bool {
        self.read().values().all(|state| *state == PartState::Up)
    }

    /// Every part and its state, as JSON strings.
    pub fn parts(&self) -> Value {
        let parts = self.read();
        Value::Object(
            parts
                .iter()
                .map(|(name, state)| (name.clone(), Value::String(state.to_string())))
                .collect(),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, PartState>> {
        self.parts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) async fn health(health: web::Data<Health>) -> HttpResponse {
    if health.is_up() {
        HttpResponse::Ok().json(json!({ "status": "OK" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "parts": health.parts() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_while_every_part_is_up() {
        let health = Health::new();
        assert!(health.is_up());
        health.set("rest", PartState::Starting);
        assert!(!health.is_up());
        health.set("rest", PartState::Up);
        health.set("consumer", PartState::Up);
        assert!(health.is_up());
        health.set("consumer", PartState::Down("event bus gone".into()));
        assert!(!health.is_up());
        assert_eq!(
            health.parts(),
            json!({"consumer": "down: event bus gone", "rest": "up"})
        );
    }
}
