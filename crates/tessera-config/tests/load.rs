//! Loader behaviour on a plain (`deny_unknown_fields`) and a flattened service-like config.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tessera_config::{
    Error, Loader, MASK, Secret, Warning, describe, example_yaml, is_default, load_from,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nested {
    a: u32,
    b: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plain {
    host: String,
    port: u16,
    debug: bool,
    auth_algs: Vec<String>,
    auth_check_claims: BTreeMap<String, Option<String>>,
    mongo_timeout: Option<u64>,
    password: Secret,
    nested: Nested,
}

impl Default for Plain {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            debug: false,
            auth_algs: vec!["ES256".into()],
            auth_check_claims: BTreeMap::from([("id".into(), None)]),
            mongo_timeout: None,
            password: Secret::default(),
            nested: Nested {
                a: 1,
                b: "x".into(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HttpFragment {
    host: String,
    port: u16,
}

impl Default for HttpFragment {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
        }
    }
}

/// Like a service config: a flattened fragment and required keys without defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Service {
    #[serde(flatten)]
    http: HttpFragment,
    #[serde(skip_serializing_if = "is_default")]
    service_instance_id: String,
    #[serde(skip_serializing_if = "is_default")]
    work_package_signing_key: Secret,
    db_name: String,
    auth_algs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    migration_max_wait_sec: Option<u64>,
    kafka_ssl_password: Secret,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            http: HttpFragment::default(),
            service_instance_id: String::new(),
            work_package_signing_key: Secret::default(),
            db_name: "work-packages".into(),
            auth_algs: vec!["ES256".into()],
            migration_max_wait_sec: None,
            kafka_ssl_password: Secret::default(),
        }
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn required_env() -> Vec<(String, String)> {
    env(&[
        ("WPS_SERVICE_INSTANCE_ID", "001"),
        (
            "WPS_WORK_PACKAGE_SIGNING_KEY",
            r#"{"kty":"EC","d":"secret-d"}"#,
        ),
    ])
}

fn yaml_file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_when_nothing_is_set() {
    let config: Plain = load_from("wps", None, Vec::new()).unwrap();
    assert_eq!(config, Plain::default());
}

#[test]
fn precedence_default_then_yaml_then_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(
        &dir,
        "c.yaml",
        "port: 9000\nhost: 0.0.0.0\nnested:\n  b: yaml\n",
    );
    let config: Plain = load_from(
        "wps",
        Some(&path),
        env(&[("WPS_PORT", "9100"), ("WPS_NESTED__A", "7")]),
    )
    .unwrap();
    assert_eq!(config.port, 9100, "env beats YAML");
    assert_eq!(config.host, "0.0.0.0", "YAML beats default");
    assert!(!config.debug, "default kept");
    assert_eq!(
        config.nested,
        Nested {
            a: 7,
            b: "yaml".into()
        },
        "nested env key merges into the YAML map"
    );
}

#[test]
fn config_yaml_variable_names_the_file_and_is_not_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "custom.yaml", "port: 9001\n");
    let config: Plain = load_from(
        "wps",
        None,
        env(&[("WPS_CONFIG_YAML", path.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(config.port, 9001);
}

#[test]
fn missing_config_yaml_file_is_an_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = load_from::<Plain>(
        "wps",
        None,
        env(&[("WPS_CONFIG_YAML", missing.to_str().unwrap())]),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ConfigFileMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("WPS_CONFIG_YAML"), "{msg}");
    assert!(msg.contains("nope.yaml"), "{msg}");
}

#[test]
fn explicit_config_yaml_wins_over_searched_files() {
    let dir = tempfile::tempdir().unwrap();
    yaml_file(&dir, ".wps.yaml", "port: 1111\n");
    let named = yaml_file(&dir, "named.yaml", "port: 2222\n");
    let loader = Loader::new("wps").search_dir(dir.path());
    assert_eq!(loader.load::<Plain>().unwrap().port, 1111);
    let named_loader = loader.env(env(&[("WPS_CONFIG_YAML", named.to_str().unwrap())]));
    assert_eq!(named_loader.load::<Plain>().unwrap().port, 2222);
}

#[test]
fn search_takes_the_first_directory_that_has_the_file() {
    let cwd = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    yaml_file(&home, ".wps.yaml", "port: 3333\n");
    let loader = Loader::new("WPS")
        .search_dir(cwd.path())
        .search_dir(home.path());
    assert_eq!(loader.load::<Plain>().unwrap().port, 3333);
    yaml_file(&cwd, ".wps.yaml", "port: 4444\n");
    assert_eq!(loader.load::<Plain>().unwrap().port, 4444);
}

#[test]
fn bad_type_from_env_names_key_variable_and_source() {
    let expected = "invalid value for config key \"port\" (env WPS_PORT, from environment variable WPS_PORT): invalid type: found string \"abc\", expected u16";
    let err = load_from::<Plain>("wps", None, env(&[("WPS_PORT", "abc")])).unwrap_err();
    assert_eq!(err.to_string(), expected);
    // Inside a flattened fragment serde loses the key; the loader must still find it.
    let mut vars = required_env();
    vars.push(("WPS_PORT".into(), "abc".into()));
    let err = load_from::<Service>("wps", None, vars).unwrap_err();
    assert_eq!(err.to_string(), expected);
}

#[test]
fn bad_type_from_yaml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "c.yaml", "port: 70000\n");
    let err = load_from::<Service>("wps", Some(&path), required_env()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("invalid value for config key \"port\" (env WPS_PORT, from YAML file "),
        "{msg}"
    );
    assert!(msg.contains("c.yaml"), "{msg}");
    assert!(msg.contains("70000"), "{msg}");
}

#[test]
fn bad_nested_value_names_the_dotted_key() {
    let err = load_from::<Plain>("wps", None, env(&[("WPS_NESTED__A", "-3")])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("invalid value for config key \"nested.a\" (env WPS_NESTED__A, from environment variable WPS_NESTED__A)"),
        "{msg}"
    );
}

#[test]
fn missing_required_key_names_key_and_variable() {
    let err =
        load_from::<Service>("wps", None, env(&[("WPS_SERVICE_INSTANCE_ID", "001")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing config key \"work_package_signing_key\" (set WPS_WORK_PACKAGE_SIGNING_KEY or put it in .wps.yaml)"
    );
}

#[test]
fn required_keys_from_env_and_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "c.yaml", "service_instance_id: from-yaml\n");
    let config: Service = load_from(
        "wps",
        Some(&path),
        env(&[("WPS_WORK_PACKAGE_SIGNING_KEY", "k")]),
    )
    .unwrap();
    assert_eq!(config.service_instance_id, "from-yaml");
    assert_eq!(config.work_package_signing_key.expose(), "k");
}

#[test]
fn unknown_yaml_key_is_an_error_for_plain_and_flattened_configs() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "c.yaml", "port: 9000\nprot: 9001\n");
    let err = load_from::<Plain>("wps", Some(&path), Vec::new()).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownKey { key, .. } if key == "prot"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"prot\""), "{err}");

    let err = load_from::<Service>("wps", Some(&path), required_env()).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownKey { key, .. } if key == "prot"),
        "{err:?}"
    );
    assert!(err.to_string().contains("c.yaml"), "{err}");
}

#[test]
fn typo_of_required_key_is_reported_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "c.yaml", "servce_instance_id: x\n");
    let err = load_from::<Service>(
        "wps",
        Some(&path),
        env(&[("WPS_WORK_PACKAGE_SIGNING_KEY", "k")]),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownKey { key, .. } if key == "servce_instance_id"),
        "{err:?}"
    );
}

#[test]
fn unknown_env_vars_with_the_prefix_load_nothing_and_are_warned_about() {
    let vars = env(&[
        ("WPS_SOMETHING_ELSE", "1"),
        ("WPSX_PORT", "1"),
        ("WPS_", "1"),
    ]);
    let loaded = Loader::new("wps")
        .env(vars)
        .load_with_warnings::<Plain>()
        .unwrap();
    assert_eq!(loaded.config, Plain::default());
    assert_eq!(
        loaded.warnings,
        vec![Warning::UnknownVariable {
            name: "WPS_SOMETHING_ELSE".into(),
            origin: "environment variable WPS_SOMETHING_ELSE".into()
        }]
    );
    // A misspelt key: the config loads with the default, and the warning says so.
    let mut vars = required_env();
    vars.push(("WPS_DB_NAEM".into(), "other".into()));
    vars.push(("WPS_CONFIG_YAML".into(), String::new()));
    let loaded = Loader::new("wps")
        .env(vars)
        .load_with_warnings::<Service>()
        .unwrap();
    assert_eq!(loaded.config.db_name, "work-packages");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(
        loaded.warnings[0].to_string(),
        "environment variable WPS_DB_NAEM names no config key and is ignored"
    );
    // `load` keeps working (the warnings go to stderr).
    let mut vars = required_env();
    vars.push(("WPS_OTHER_TOOL_SETTING".into(), "[1,2]".into()));
    assert!(load_from::<Service>("wps", None, vars).is_ok());
}

#[test]
fn keys_of_the_original_that_are_not_implemented_load_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(
        &dir,
        "c.yaml",
        "port: 9000\nauto_reload: true\nlog_traceback: false\nenable_opentelemetry: true\n",
    );
    let mut vars = required_env();
    vars.push(("WPS_OTEL_TRACE_SAMPLING_RATE".into(), "0.5".into()));
    let loaded = Loader::new("wps")
        .env(vars.clone())
        .yaml_file(&path)
        .load_with_warnings::<Service>()
        .unwrap();
    assert_eq!(loaded.config.http.port, 9000);
    let mut keys: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| match w {
            Warning::IgnoredKey { key, .. } => key.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "auto_reload",
            "enable_opentelemetry",
            "log_traceback",
            "otel_trace_sampling_rate"
        ]
    );
    let text: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("\"auto_reload\"") && t.contains("c.yaml")),
        "{text:?}"
    );
    // A service adds its own; other unknown keys stay errors.
    let path = yaml_file(&dir, "d.yaml", "migration_wait_sec: 5\n");
    let vars = required_env();
    let loaded = Loader::new("wps")
        .env(vars.clone())
        .yaml_file(&path)
        .ignore_keys(["migration_wait_sec"])
        .load_with_warnings::<Service>()
        .unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    let err = Loader::new("wps")
        .env(vars)
        .yaml_file(&path)
        .load_with_warnings::<Service>()
        .unwrap_err();
    assert!(matches!(err, Error::UnknownKey { .. }), "{err:?}");
    // A key the config has is never ignored.
    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HasIt {
        auto_reload: bool,
    }
    let loaded = Loader::new("wps")
        .env(env(&[("WPS_AUTO_RELOAD", "true")]))
        .load_with_warnings::<HasIt>()
        .unwrap();
    assert!(loaded.config.auto_reload);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn dotenv_files_sit_between_the_yaml_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = yaml_file(&dir, "c.yaml", "port: 9000\nhost: yaml\ndb_name: yaml\n");
    let dotenv = yaml_file(
        &dir,
        ".env",
        "# a comment\n\nWPS_HOST=from-dotenv\nexport WPS_DB_NAME=\"quoted # not a comment\"\n\
         WPS_SERVICE_INSTANCE_ID='single'\nWPS_AUTH_ALGS=[\"ES256\", \"EdDSA\"] # comment\n\
         OTHER_TOOL=x\nWPS_WORK_PACKAGE_SIGNING_KEY=from-dotenv\nWPS_TYPO=1\n",
    );
    let later = yaml_file(&dir, "later.env", "WPS_HOST=from-later-file\n");
    let loaded = Loader::new("wps")
        .env(env(&[("WPS_WORK_PACKAGE_SIGNING_KEY", "from-env")]))
        .yaml_file(&yaml)
        .dotenv_file(&dotenv)
        .dotenv_file(&later)
        .dotenv_file(dir.path().join("missing.env"))
        .load_with_warnings::<Service>()
        .unwrap();
    let config = loaded.config;
    assert_eq!(config.http.host, "from-later-file");
    assert_eq!(config.http.port, 9000);
    assert_eq!(config.db_name, "quoted # not a comment");
    assert_eq!(config.service_instance_id, "single");
    assert_eq!(config.auth_algs, ["ES256", "EdDSA"]);
    assert_eq!(config.work_package_signing_key.expose(), "from-env");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].to_string().contains("WPS_TYPO in"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn file_secrets_sit_between_the_yaml_file_and_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(
        secrets.join("WPS_WORK_PACKAGE_SIGNING_KEY"),
        "from-secret\n",
    )
    .unwrap();
    std::fs::write(secrets.join("wps_service_instance_id"), "  lower-case  ").unwrap();
    std::fs::write(secrets.join("wps_db_name"), "secret-db").unwrap();
    std::fs::write(secrets.join("README"), "not a secret").unwrap();
    let dotenv = yaml_file(&dir, ".env", "WPS_DB_NAME=dotenv-db\n");
    let by_var = Loader::new("wps")
        .env(env(&[("WPS_SECRETS_DIR", secrets.to_str().unwrap())]))
        .load_with_warnings::<Service>()
        .unwrap();
    assert_eq!(
        by_var.config.work_package_signing_key.expose(),
        "from-secret"
    );
    assert_eq!(by_var.config.service_instance_id, "lower-case");
    assert_eq!(by_var.config.db_name, "secret-db");
    assert!(by_var.warnings.is_empty(), "{:?}", by_var.warnings);
    let by_option = Loader::new("wps")
        .secrets_dir(&secrets)
        .dotenv_file(&dotenv)
        .load::<Service>()
        .unwrap();
    assert_eq!(by_option.db_name, "dotenv-db");
    // A bad secret names its file.
    std::fs::write(secrets.join("WPS_PORT"), "not-a-port").unwrap();
    let err = Loader::new("wps")
        .secrets_dir(&secrets)
        .load::<Service>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("secret file") && err.contains("WPS_PORT"),
        "{err}"
    );
    let err = Loader::new("wps")
        .env(env(&[("WPS_SECRETS_DIR", "/nonexistent/secrets")]))
        .load::<Service>()
        .unwrap_err();
    assert!(
        matches!(&err, Error::ConfigFileMissing { named_by, .. } if named_by == "WPS_SECRETS_DIR"),
        "{err:?}"
    );
}

#[test]
fn env_names_are_case_insensitive() {
    let config: Plain = load_from("WPS", None, env(&[("wps_Port", "1234")])).unwrap();
    assert_eq!(config.port, 1234);
}

#[test]
fn list_and_map_values_from_env() {
    let config: Plain = load_from(
        "wps",
        None,
        env(&[
            ("WPS_AUTH_ALGS", r#"["ES256","ES384"]"#),
            ("WPS_AUTH_CHECK_CLAIMS", r#"{"id": null, "name": "x"}"#),
        ]),
    )
    .unwrap();
    assert_eq!(config.auth_algs, vec!["ES256", "ES384"]);
    assert_eq!(
        config.auth_check_claims,
        BTreeMap::from([("id".into(), None), ("name".into(), Some("x".into()))])
    );
    // Inline YAML and figment's own `{k=v}` syntax.
    let config: Plain = load_from(
        "wps",
        None,
        env(&[
            ("WPS_AUTH_ALGS", "[ES512]"),
            ("WPS_AUTH_CHECK_CLAIMS", "{email=\"e\"}"),
        ]),
    )
    .unwrap();
    assert_eq!(config.auth_algs, vec!["ES512"]);
    assert_eq!(
        config.auth_check_claims,
        BTreeMap::from([("email".into(), Some("e".into()))])
    );
}

#[test]
fn bad_list_element_names_the_key() {
    let err = load_from::<Plain>("wps", None, env(&[("WPS_AUTH_ALGS", "[1, 2]")])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("invalid value for config key \"auth_algs.0\" (env WPS_AUTH_ALGS, from environment variable WPS_AUTH_ALGS)"),
        "{msg}"
    );
}

#[test]
fn scalars_parse_to_the_field_type() {
    let vars = env(&[
        ("WPS_SERVICE_INSTANCE_ID", "001"),
        ("WPS_WORK_PACKAGE_SIGNING_KEY", "12345"),
        ("WPS_DB_NAME", "true"),
        ("WPS_KAFKA_SSL_PASSWORD", "0.5"),
        ("WPS_MIGRATION_MAX_WAIT_SEC", "30"),
    ]);
    let config: Service = load_from("wps", None, vars).unwrap();
    assert_eq!(config.service_instance_id, "001");
    assert_eq!(config.work_package_signing_key.expose(), "12345");
    assert_eq!(config.db_name, "true");
    assert_eq!(config.kafka_ssl_password.expose(), "0.5");
    assert_eq!(config.migration_max_wait_sec, Some(30));

    let config: Plain = load_from(
        "wps",
        None,
        env(&[
            ("WPS_DEBUG", "yes"),
            ("WPS_MONGO_TIMEOUT", "12"),
            ("WPS_PASSWORD", "77"),
        ]),
    )
    .unwrap();
    assert!(config.debug);
    assert_eq!(config.mongo_timeout, Some(12));
    assert_eq!(config.password.expose(), "77");
}

#[test]
fn optional_key_left_out_of_defaults_is_still_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "c.yaml", "migration_max_wait_sec: 5\n");
    let config: Service = load_from("wps", Some(&path), required_env()).unwrap();
    assert_eq!(config.migration_max_wait_sec, Some(5));
}

#[test]
fn secrets_are_masked_in_debug_and_serialize() {
    let config: Service = load_from("wps", None, required_env()).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("secret-d"), "{debug}");
    assert!(debug.contains(MASK), "{debug}");
    let json = serde_json::to_string(&config).unwrap();
    assert!(!json.contains("secret-d"), "{json}");
    assert!(json.contains(MASK), "{json}");
    assert!(
        config
            .work_package_signing_key
            .expose()
            .contains("secret-d")
    );
}

#[test]
fn describe_lists_keys_variables_and_defaults() {
    let docs = describe::<Service>("wps").unwrap();
    let keys: Vec<&str> = docs.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "auth_algs",
            "db_name",
            "host",
            "kafka_ssl_password",
            "port",
            "service_instance_id",
            "work_package_signing_key"
        ]
    );
    let port = docs.iter().find(|d| d.key == "port").unwrap();
    assert_eq!(port.env, "WPS_PORT");
    assert_eq!(port.default.as_deref(), Some("8080"));
    let algs = docs.iter().find(|d| d.key == "auth_algs").unwrap();
    assert_eq!(algs.default.as_deref(), Some(r#"["ES256"]"#));
    let key = docs
        .iter()
        .find(|d| d.key == "work_package_signing_key")
        .unwrap();
    assert_eq!(key.default, None);
    let help = tessera_config::help_text::<Service>("wps").unwrap();
    assert!(help.contains("WPS_SERVICE_INSTANCE_ID"), "{help}");
}

#[test]
fn example_yaml_is_sorted_commented_and_loads_back() {
    let yaml = example_yaml::<Service>("Example config\n\nGenerated").unwrap();
    assert!(
        yaml.starts_with("# Example config\n#\n# Generated\n"),
        "{yaml}"
    );
    let auth = yaml.find("auth_algs:").unwrap();
    let db = yaml.find("db_name:").unwrap();
    let port = yaml.find("port:").unwrap();
    assert!(auth < db && db < port, "{yaml}");
    assert!(
        yaml.contains("# service_instance_id: <required, no default>"),
        "{yaml}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "example.yaml", &yaml);
    let config: Service = load_from("wps", Some(&path), required_env()).unwrap();
    assert_eq!(config.http, HttpFragment::default());
    assert_eq!(config.db_name, "work-packages");
}

#[test]
fn empty_yaml_file_is_an_empty_config_and_broken_yaml_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = yaml_file(&dir, "empty.yaml", "# nothing here\n");
    assert_eq!(
        load_from::<Plain>("wps", Some(&empty), Vec::new()).unwrap(),
        Plain::default()
    );
    let broken = yaml_file(&dir, "broken.yaml", "port: [1\n");
    let err = load_from::<Plain>("wps", Some(&broken), Vec::new()).unwrap_err();
    assert!(matches!(err, Error::ConfigFileRead { .. }), "{err:?}");
}

/// A validated newtype: its errors are plain messages without the offending value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
struct HttpUrl(String);

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.starts_with("http://") || value.starts_with("https://") {
            Ok(Self(value))
        } else {
            Err("url must start with http:// or https://".into())
        }
    }
}

impl From<HttpUrl> for String {
    fn from(value: HttpUrl) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AccessFragment {
    access_url: HttpUrl,
    access_timeout: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WithValidated {
    #[serde(flatten)]
    access: AccessFragment,
    #[serde(flatten)]
    http: HttpFragment,
}

impl Default for WithValidated {
    fn default() -> Self {
        Self {
            access: AccessFragment {
                access_url: HttpUrl("http://access".into()),
                access_timeout: 5,
            },
            http: HttpFragment::default(),
        }
    }
}

#[test]
fn validation_message_in_flattened_fragment_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = yaml_file(&dir, "c.yaml", "access_url: ftp://nope\nport: 9000\n");
    let err = load_from::<WithValidated>("wps", Some(&path), env(&[("WPS_ACCESS_TIMEOUT", "7")]))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "invalid value for config key \"access_url\" (env WPS_ACCESS_URL, from YAML file "
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("url must start with http:// or https://"),
        "{msg}"
    );

    let ok: WithValidated = load_from(
        "wps",
        None,
        env(&[("WPS_ACCESS_URL", "https://x"), ("WPS_PORT", "1")]),
    )
    .unwrap();
    assert_eq!(ok.access.access_url, HttpUrl("https://x".into()));
    assert_eq!(ok.http.port, 1);
}

#[test]
fn an_alias_sets_its_key_below_the_prefixed_variable() {
    let load = |pairs: &[(&str, &str)]| -> Plain {
        Loader::new("wps")
            .alias("LEGACY_PORT", "port")
            .env(env(pairs))
            .load()
            .unwrap()
    };
    assert_eq!(
        load(&[("legacy_port", "9200")]).port,
        9200,
        "typed like the key"
    );
    assert_eq!(
        load(&[("LEGACY_PORT", "9200"), ("WPS_PORT", "9300")]).port,
        9300,
        "the prefixed variable wins"
    );
    assert_eq!(load(&[("OTHER_PORT", "9200")]).port, 8080, "only the alias");
    let err = Loader::new("wps")
        .alias("LEGACY_PORT", "port")
        .env(env(&[("LEGACY_PORT", "not-a-port")]))
        .load::<Plain>()
        .unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WithBareNames {
    argo_namespace: String,
    #[serde(flatten)]
    http: HttpFragment,
    #[serde(skip_serializing_if = "is_default", default)]
    jwt_secret_key: String,
}

impl Default for WithBareNames {
    fn default() -> Self {
        Self {
            argo_namespace: "qgnet".into(),
            http: HttpFragment::default(),
            jwt_secret_key: String::new(),
        }
    }
}

#[test]
fn unprefixed_keys_read_their_bare_variable_and_the_prefixed_one_wins() {
    let loader = |vars: &[(&str, &str)]| {
        Loader::new("ogdc")
            .unprefixed(&["argo_namespace", "port"])
            .env(env(vars))
    };
    let config: WithBareNames = loader(&[
        ("ARGO_NAMESPACE", "other"),
        ("PORT", "81"),
        ("HOST", "ignored.example"),
        ("OGDC_JWT_SECRET_KEY", "k"),
    ])
    .load()
    .unwrap();
    assert_eq!(config.argo_namespace, "other");
    assert_eq!(config.http.port, 81);
    assert_eq!(
        config.http.host, "127.0.0.1",
        "HOST is not an unprefixed key"
    );
    assert_eq!(config.jwt_secret_key, "k");

    let config: WithBareNames = loader(&[("ARGO_NAMESPACE", "bare"), ("OGDC_ARGO_NAMESPACE", "p")])
        .load()
        .unwrap();
    assert_eq!(config.argo_namespace, "p");

    let err = loader(&[("PORT", "x")])
        .load::<WithBareNames>()
        .unwrap_err();
    assert!(err.to_string().contains("(env PORT, "), "{err}");
    let loader = loader(&[]);
    assert_eq!(loader.env_var_for("argo_namespace"), "ARGO_NAMESPACE");
    assert_eq!(loader.env_var_for("host"), "OGDC_HOST");
    let docs = tessera_config::describe_with::<WithBareNames>(&loader).unwrap();
    let names: Vec<&str> = docs.iter().map(|d| d.env.as_str()).collect();
    assert_eq!(names, ["ARGO_NAMESPACE", "OGDC_HOST", "PORT"]);
}
