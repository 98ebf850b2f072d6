//! What several test suites need and used to copy; a dev-dependency only, never in a build
//! that ships.
//!
//! - [`interop`]: the independent Python implementations under `scripts/interop/` (the
//!   interpreter from `TESSERA_PYTHON`, default `python3`), checked with the script's
//!   `check` command and run with JSON out.
//! - [`schemathesis`]: property-based API tests against a running service's OpenAPI
//!   document (schemathesis in the same venv).
//! - [`infra`]: the real servers of `scripts/test-infra` (`TESSERA_TEST_MONGO_URL`,
//!   `TESSERA_TEST_KAFKA_SERVERS`, `TESSERA_TEST_S3_URL`, `TESSERA_TEST_S3S_URL` and its
//!   credentials, `TESSERA_TEST_S3_BUCKET`, `TESSERA_TEST_OIDC_ISSUER`).
//! - [`browser`] (feature `browser`, which brings reqwest): [`browser::Browser`], a
//!   cookie-keeping client that logs users in at the test OpenID provider's forms.
//!
//! The first three follow one rule: what a test needs but cannot have makes it print
//! `SKIPPED: <test>: <reason>` and return, unless the matching `TESSERA_REQUIRE_INTEROP=1`
//! or `TESSERA_REQUIRE_INFRA=1` is set, which turns the skip into a failure (`scripts/test`
//! sets both, so CI never passes by skipping).
//!
//! These helpers fail a test the way tests fail, by panicking, rather than returning errors.

use std::io::Write as _;

#[cfg(feature = "browser")]
pub mod browser;
pub mod infra;
pub mod interop;
pub mod schemathesis;

/// Whether the environment variable `var` is exactly `1`.
pub fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|value| value == "1")
}

/// Fails the test when `require_var` is `1`; otherwise prints `SKIPPED: <test>: <reason>`.
fn skip_or_fail(require_var: &str, test: &str, reason: &str) {
    assert!(
        !flag(require_var),
        "{require_var}=1 but {test} cannot run: {reason}"
    );
    // Straight to the stream: `eprintln!` would be captured by the test harness and the skip
    // would go unseen.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// The running test's name: libtest names each test's thread after it.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "this test".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Output};

    const CHILD: &str = "TESSERA_TEST_SUPPORT_CHILD";
    const UNSET: &str = "TESSERA_TEST_SUPPORT_NEVER_SET";

    #[test]
    fn the_test_name_comes_from_the_harness() {
        assert_eq!(
            super::current_test(),
            "tests::the_test_name_comes_from_the_harness"
        );
        let unnamed = std::thread::spawn(super::current_test).join().unwrap();
        assert_eq!(unnamed, "this test");
    }

    /// Does its work only when run by [`child`], with the environment that test gives it.
    #[test]
    fn missing_server() {
        if super::flag(CHILD) {
            assert_eq!(crate::infra::server(UNSET), None);
        }
    }

    /// Runs [`missing_server`] in a fresh process (this one's environment cannot change).
    fn child(require: &str) -> Output {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::missing_server", "--test-threads=1"])
            .env(CHILD, "1")
            .env(crate::infra::REQUIRE, require)
            .env_remove(UNSET)
            .output()
            .unwrap()
    }

    #[test]
    fn a_missing_server_skips_visibly() {
        let out = child("0");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "SKIPPED: tests::missing_server: {UNSET} is not set (scripts/test-infra up"
            )),
            "{stderr}"
        );
    }

    #[test]
    fn the_require_flag_turns_the_skip_into_a_failure() {
        let out = child("1");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "TESSERA_REQUIRE_INFRA=1 but tests::missing_server cannot run: {UNSET} is not set"
            )),
            "{stdout}"
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("SKIPPED"));
    }
}
