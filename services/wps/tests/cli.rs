//! The `wps` binary's commands and exit codes, and config loading.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Keys;
use wps::WpsConfig;

fn wps(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wps"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WPS_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir)
        .env("WPS_LOG_LEVEL", "OFF")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_commands_and_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let output = wps(dir.path(), &[], &["--help"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "serve",
        "run-rest",
        "consume-events",
        "migrate-db",
        "grants",
        "WPS_WORK_PACKAGE_SIGNING_KEY",
        "WPS_AUTH_KEY",
        "WPS_ACCESS_URL",
        "WPS_PURGE_RETENTION_DAYS",
        "WPS_EMBEDDED_DB_PATH",
        "WPS_MONGO_DSN",
        "WPS_DB_NAME",
        "WPS_KAFKA_SERVERS",
        "WPS_KAFKA_SECURITY_PROTOCOL",
        "WPS_DB_VERSION_COLLECTION",
    ] {
        assert!(text.contains(needle), "{needle} missing from --help");
    }
    let output = wps(dir.path(), &[], &["grants", "add", "--help"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("--valid-days") && text.contains("--until") && text.contains("--box"));
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let db = dir.path().join("x.sqlite").display().to_string();
    let output = wps(dir.path(), &[], &["migrate-db"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("WPS_WORK_PACKAGE_SIGNING_KEY"),
        "{}",
        stderr(&output)
    );

    let output = wps(
        dir.path(),
        &[("WPS_WORK_PACKAGE_SIGNING_KEY", &keys.signing_private)],
        &["migrate-db"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("WPS_AUTH_KEY"),
        "{}",
        stderr(&output)
    );

    // A public key where the private one belongs: the original's startup message.
    let output = wps(
        dir.path(),
        &[
            ("WPS_WORK_PACKAGE_SIGNING_KEY", &keys.signing_public),
            ("WPS_AUTH_KEY", &keys.auth_public),
        ],
        &["migrate-db"],
    );
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("\"work_package_signing_key\""), "{err}");
    assert!(
        err.contains("No private work order signing key found."),
        "{err}"
    );

    // A private auth key is refused; a bad URL and a bad number name their keys.
    for (var, value, key) in [
        ("WPS_AUTH_KEY", keys.auth_private.as_str(), "auth_key"),
        ("WPS_ACCESS_URL", "ftp://access", "access_url"),
        (
            "WPS_WORK_PACKAGE_VALID_DAYS",
            "many",
            "work_package_valid_days",
        ),
        (
            "WPS_DATASET_CHANGE_TOPIC",
            "bad topic",
            "dataset_change_topic",
        ),
    ] {
        let mut vars = vec![
            (
                "WPS_WORK_PACKAGE_SIGNING_KEY",
                keys.signing_private.as_str(),
            ),
            ("WPS_AUTH_KEY", keys.auth_public.as_str()),
            ("WPS_EMBEDDED_DB_PATH", db.as_str()),
        ];
        vars.retain(|(v, _)| *v != var);
        vars.push((var, value));
        let output = wps(dir.path(), &vars, &["migrate-db"]);
        assert_eq!(output.status.code(), Some(2), "{var}: {}", stderr(&output));
        assert!(stderr(&output).contains(key), "{var}: {}", stderr(&output));
    }
}

#[test]
fn migrate_db_creates_prefixed_collections_and_grant_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let db = dir.path().join("data").join("wps.sqlite");
    let db_text = db.display().to_string();
    let vars = [
        (
            "WPS_WORK_PACKAGE_SIGNING_KEY",
            keys.signing_private.as_str(),
        ),
        ("WPS_AUTH_KEY", keys.auth_public.as_str()),
        ("WPS_EMBEDDED_DB_PATH", db_text.as_str()),
        ("WPS_DB_NAME", "wp"),
    ];
    let migrate = || {
        let output = wps(dir.path(), &vars, &["migrate-db"]);
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let lines = migrate();
    let names: Vec<&str> = lines
        .iter()
        .map(|v| v["collection"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "wp.datasets",
            "wp.uploadBoxes",
            "wp.workPackages",
            "wp.accessionMaps",
            "wp.grants",
            "wp.wpsDbVersions"
        ]
    );
    assert!(lines[..5].iter().all(|l| l["status"] == "created"));
    let version = &lines[5];
    assert_eq!(version["status"], "recorded");
    assert_eq!(version["db_version"], 2);
    assert_eq!(version["previous_version"], 0);
    assert_eq!(version["recorded"], serde_json::json!([1, 2]));
    assert_eq!(version["db"], db_text.as_str());
    assert!(db.is_file());
    // Running it again is harmless: the version is current.
    let again = migrate();
    assert_eq!(again[5]["status"], "current");
    assert_eq!(again[5]["previous_version"], 2);
    assert_eq!(again[5]["recorded"], serde_json::json!([]));

    let unknown = uuid::Uuid::new_v4().to_string();
    let output = wps(dir.path(), &vars, &["grants", "revoke", &unknown]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&unknown));
    let user = uuid::Uuid::new_v4().to_string();
    let output = wps(
        dir.path(),
        &vars,
        &[
            "grants",
            "add",
            "--user",
            &user,
            "--dataset",
            "DS1",
            "--until",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "a grant ending in the past");
    assert!(
        stderr(&output).contains("valid_until"),
        "{}",
        stderr(&output)
    );
    let output = wps(dir.path(), &vars, &["grants", "add", "--user", &user]);
    assert_eq!(output.status.code(), Some(2), "clap usage error");
    let output = wps(
        dir.path(),
        &vars,
        &[
            "grants",
            "add",
            "--user",
            &user,
            "--box",
            &user,
            "--valid-days",
            "1",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let grant: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(grant["kind"], "upload");
    assert_eq!(grant["resource_id"], user.as_str());
}

#[test]
fn config_loads_from_environment_and_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let yaml = dir.path().join("wps.yaml");
    std::fs::write(
        &yaml,
        "work_package_valid_days: 7\naccess_url: http://access/\npurge_retention_days: 3\n",
    )
    .unwrap();
    let env = vec![
        ("WPS_CONFIG_YAML".to_owned(), yaml.display().to_string()),
        (
            "WPS_WORK_PACKAGE_SIGNING_KEY".to_owned(),
            keys.signing_private.clone(),
        ),
        ("WPS_AUTH_KEY".to_owned(), keys.auth_public.clone()),
        (
            "WPS_AUTH_CHECK_CLAIMS".to_owned(),
            r#"{"id": null, "iat": null}"#.to_owned(),
        ),
        ("WPS_WORK_PACKAGE_VALID_DAYS".to_owned(), "9".to_owned()),
    ];
    let config = WpsConfig::load_from_env(env).unwrap();
    assert_eq!(config.work_package_valid_days, 9, "the environment wins");
    assert_eq!(config.purge_retention_days, Some(3));
    assert_eq!(config.access_base_url().as_deref(), Some("http://access"));
    assert_eq!(config.auth_check_claims.len(), 2);
    assert_eq!(config.service_name, "wps");
    assert_eq!(config.collections.work_packages_collection, "workPackages");
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(&keys.signing_private),
        "the signing key is masked"
    );

    std::fs::write(&yaml, "work_package_valid_dayz: 7\n").unwrap();
    let err = WpsConfig::load_from_env(vec![
        ("WPS_CONFIG_YAML".to_owned(), yaml.display().to_string()),
        (
            "WPS_WORK_PACKAGE_SIGNING_KEY".to_owned(),
            keys.signing_private.clone(),
        ),
        ("WPS_AUTH_KEY".to_owned(), keys.auth_public.clone()),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("work_package_valid_dayz"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

/// A deployment of the original: its YAML file with keys Tessera does not implement, the
/// auth key in `./.env`, the signing key as a file secret. It loads, with a warning for each
/// ignored key and for a variable that names no key.
#[test]
fn an_original_deployments_config_loads_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let db = dir.path().join("wps.sqlite").display().to_string();
    std::fs::write(
        dir.path().join(".wps.yaml"),
        format!(
            "service_instance_id: '1'\nauto_reload: false\nlog_traceback: true\n\
             enable_opentelemetry: false\notel_trace_sampling_rate: 1.0\n\
             migration_wait_sec: 5\nembedded_db_path: {db}\ndb_name: wp\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "# the original's env_file\nWPS_AUTH_KEY='{}'\n",
            keys.auth_public
        ),
    )
    .unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(
        secrets.join("wps_work_package_signing_key"),
        format!("{}\n", keys.signing_private),
    )
    .unwrap();
    let secrets_text = secrets.display().to_string();
    let output = wps(
        dir.path(),
        &[
            ("WPS_SECRETS_DIR", secrets_text.as_str()),
            ("WPS_WORK_PACKAGE_VALID_DAY", "5"),
        ],
        &["migrate-db"],
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    for key in [
        "auto_reload",
        "log_traceback",
        "enable_opentelemetry",
        "otel_trace_sampling_rate",
    ] {
        assert!(
            err.contains(&format!("\"{key}\"")),
            "{key} not warned about: {err}"
        );
    }
    assert!(
        err.contains("environment variable WPS_WORK_PACKAGE_VALID_DAY names no config key"),
        "{err}"
    );
}
