//! `shutdown_signal` wakes on SIGTERM and on SIGINT, and not before.
//!
//! Alone in its own test binary: the signals go to the whole process.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tessera_http::shutdown_signal;

fn send(signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

async fn resolves_on(signal: &str) {
    let mut waiting = Box::pin(shutdown_signal());
    // Polling it installs the handlers; without a signal it stays pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut waiting)
            .await
            .is_err(),
        "resolved without a signal"
    );
    send(signal);
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .unwrap_or_else(|_| panic!("no wake-up on SIG{signal}"));
}

// One test for both signals: a second test in parallel could consume the other's wake-up.
#[tokio::test]
async fn sigterm_and_sigint_both_resolve_it() {
    resolves_on("TERM").await;
    resolves_on("INT").await;
}
