//! Schemathesis (in the interop venv, `$TESSERA_PYTHON -m schemathesis.cli`) against a
//! running service: property-based requests generated from its OpenAPI document, failing
//! on any 5xx and on responses the document does not describe.
//!
//! Like the oracles, a missing schemathesis prints `SKIPPED` unless
//! `TESSERA_REQUIRE_INTEROP=1`.

use std::process::Command;

use crate::interop::python;

/// Seconds one run may take unless `TESSERA_SCHEMATHESIS_SECONDS` says otherwise.
pub const DEFAULT_SECONDS: u64 = 120;

/// One run against a service.
#[derive(Debug, Clone)]
pub struct Run {
    schema_url: String,
    headers: Vec<String>,
    args: Vec<String>,
}

impl Run {
    /// A run over the document at `schema_url` (its `servers`, if any, or its origin is
    /// where requests go).
    pub fn new(schema_url: impl Into<String>) -> Self {
        Self {
            schema_url: schema_url.into(),
            headers: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Sends this header with every request, e.g. a valid token.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(format!("{name}: {value}"));
        self
    }

    /// More command-line arguments of `st run`.
    #[must_use]
    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Self {
        self.args.extend(args.into_iter().map(str::to_owned));
        self
    }

    /// Whether schemathesis can run; prints `SKIPPED` (or fails under
    /// `TESSERA_REQUIRE_INTEROP=1`) when not.
    pub fn available(test: &str) -> bool {
        crate::interop::runs(
            &python(),
            test,
            &["-m", "schemathesis.cli", "--version"],
            "schemathesis",
        )
    }

    /// Runs every check for the time budget (blocking: call it from `spawn_blocking` while
    /// the service runs) and panics with schemathesis's report when it finds anything.
    pub fn assert_passes(&self) {
        let seconds = std::env::var("TESSERA_SCHEMATHESIS_SECONDS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(DEFAULT_SECONDS);
        let mut command = Command::new(python());
        command
            .args(["-m", "schemathesis.cli", "run", &self.schema_url])
            // Every check of the responses; not `positive_data_acceptance` and
            // `negative_data_rejection`, which judge how precisely the document describes
            // the requests: rules a schema cannot say (a Crypt4GH key that is a valid curve
            // point, the fields a download or upload package needs together) would make them
            // fail on documented 422s and 403s.
            .args(["--checks", "all"])
            .args([
                "--exclude-checks",
                "positive_data_acceptance,negative_data_rejection",
            ])
            .args(["--max-time", &seconds.to_string()])
            .args(["--workers", "1", "--no-color", "--seed", "1"])
            .env("NO_COLOR", "1");
        for header in &self.headers {
            command.args(["--header", header]);
        }
        command.args(&self.args);
        let out = match command.output() {
            Ok(out) => out,
            Err(err) => panic!("cannot run schemathesis: {err}"),
        };
        let report = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "schemathesis found problems:\n{report}"
        );
    }
}
