//! The runtime with a made-up service: parts start in order, one failing at start-up or
//! while running stops the others, stopping keeps the declared order and the deadline, and
//! `/health` follows the parts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_http::{HttpConfig, HttpStack, LogConfig, PartState};
use tessera_service::dev::DevEnv;
use tessera_service::{
    Error, Failure, Given, Info, Part, Parts, Role, Service, ServiceConfig, Started, start,
};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Config {
    #[serde(flatten)]
    log: LogConfig,
}

impl ServiceConfig for Config {
    const PREFIX: &'static str = "toy";
    fn log(&self) -> &LogConfig {
        &self.log
    }
}

#[derive(Debug, thiserror::Error)]
enum ToyError {
    #[error(transparent)]
    Process(#[from] Error),
    #[error("toy part failed: {0}")]
    Part(&'static str),
}

impl Failure for ToyError {
    fn exit_code(&self) -> u8 {
        1
    }
}

/// What the parts do, chosen by each test.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    /// Every part runs until stopped.
    Healthy,
    /// The last part fails at start.
    FailAtStart,
    /// The worker fails after a moment.
    FailLater,
    /// The worker ignores its stop signal.
    Stubborn,
}

struct Toy {
    plan: Plan,
    log: Arc<Mutex<Vec<String>>>,
}

impl Toy {
    fn record(log: &Arc<Mutex<Vec<String>>>, line: String) {
        log.lock().unwrap().push(line);
    }
}

#[async_trait]
impl Service for Toy {
    type Config = Config;
    type Error = ToyError;
    type Commands = tessera_service::cli::NoCommands;

    const INFO: Info = Info {
        name: "toy",
        title: "Toy",
        about: "a toy service",
        long_about: "a toy service",
        version: "0",
        roles: &[Role::Rest, Role::Workers],
        migrations: false,
    };

    fn validate(_: &Config) -> Result<(), ToyError> {
        Ok(())
    }

    async fn prepare(_: Config, _: Given) -> Result<Self, ToyError> {
        unreachable!("the tests build the core themselves")
    }

    fn parts(&self) -> Result<Vec<Part<ToyError>>, ToyError> {
        let http = HttpConfig {
            port: 0,
            ..HttpConfig::default()
        };
        let stack = HttpStack::new(http, utoipa::openapi::OpenApi::default).unwrap();
        let mut parts = vec![Part::rest("rest", stack, |_| {})];
        let log = self.log.clone();
        let plan = self.plan;
        parts.push(Part::task(
            "worker",
            Role::Workers,
            move |shutdown| async move {
                match plan {
                    Plan::FailLater => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return Err(ToyError::Part("worker"));
                    }
                    Plan::Stubborn => std::future::pending::<()>().await,
                    _ => shutdown.wait().await,
                }
                Toy::record(&log, "worker stopped".into());
                Ok(())
            },
        ));
        let log = self.log.clone();
        parts.push(Part::new(
            "late",
            Role::Workers,
            move |context| async move {
                if plan == Plan::FailAtStart {
                    return Err(ToyError::Part("late"));
                }
                Ok(Started::new(async move {
                    context.shutdown.wait().await;
                    Toy::record(&log, "late stopped".into());
                    Ok(())
                }))
            },
        ));
        Ok(parts)
    }

    fn dev_config(_: &DevEnv) -> Result<Config, ToyError> {
        Ok(Config::default())
    }
}

fn toy(plan: Plan) -> (Toy, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    (
        Toy {
            plan,
            log: log.clone(),
        },
        log,
    )
}

async fn health(url: &str) -> Option<u16> {
    reqwest::get(format!("{url}/health"))
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn a_part_failing_at_start_stops_the_started_ones() {
    let (core, log) = toy(Plan::FailAtStart);
    let err = start(core, Parts::ALL).await.unwrap_err();
    assert!(matches!(err, ToyError::Part("late")), "{err:?}");
    assert_eq!(*log.lock().unwrap(), ["worker stopped"]);
}

#[tokio::test]
async fn a_part_failing_later_stops_the_others_and_is_the_result() {
    let (core, log) = toy(Plan::FailLater);
    let running = start(core, Parts::ALL).await.unwrap();
    let url = running.url().unwrap();
    assert_eq!(health(&url).await, Some(200));
    let health_registry = running.health().clone();
    let result = tokio::time::timeout(Duration::from_secs(20), running.wait())
        .await
        .expect("the service kept running after a part failed");
    assert!(
        matches!(result, Err(ToyError::Part("worker"))),
        "{result:?}"
    );
    assert_eq!(*log.lock().unwrap(), ["late stopped"]);
    assert_eq!(health(&url).await, None, "the REST part stopped too");
    assert!(matches!(
        health_registry.get("worker"),
        Some(PartState::Down(reason)) if reason.contains("toy part failed")
    ));
}

#[tokio::test]
async fn parts_stop_in_declared_order_and_only_the_selected_roles_run() {
    let (core, log) = toy(Plan::Healthy);
    let running = start(core, Parts::ALL).await.unwrap();
    let url = running.url().unwrap();
    assert!(running.health().is_up());
    running.stop().await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["worker stopped", "late stopped"]);
    assert_eq!(health(&url).await, None);

    let (core, log) = toy(Plan::Healthy);
    let running = start(core, Parts::WORKERS).await.unwrap();
    assert!(running.url().is_none(), "no REST part in run-workers");
    running.stop().await.unwrap();
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_part_that_ignores_its_stop_is_aborted_at_the_deadline() {
    let (core, log) = toy(Plan::Stubborn);
    let running = start(core, Parts::ALL)
        .await
        .unwrap()
        .with_deadline(Duration::from_millis(300));
    let stopper = running.stopper();
    stopper.stop();
    let result = tokio::time::timeout(Duration::from_secs(10), running.wait())
        .await
        .expect("the deadline was not kept");
    assert!(
        matches!(
            result,
            Err(ToyError::Process(Error::StopTimeout { part: "worker", .. }))
        ),
        "{result:?}"
    );
    // The deadline is shared: the part after the stubborn one is aborted too, unheard.
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn health_reports_503_while_a_part_is_not_up() {
    let (core, _log) = toy(Plan::Healthy);
    let running = start(core, Parts::ALL).await.unwrap();
    let url = running.url().unwrap();
    running
        .health()
        .set("late", PartState::Down("lost its broker".into()));
    let response = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["parts"]["late"], "down: lost its broker");
    assert_eq!(body["parts"]["rest"], "up");
    running.health().set("late", PartState::Up);
    assert_eq!(health(&url).await, Some(200));
    running.stop().await.unwrap();
}
