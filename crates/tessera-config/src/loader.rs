//! The layering itself: defaults < YAML file < environment, and errors that name the key.
//!
//! Services `#[serde(flatten)]` provider fragments into their config, and serde loses the key
//! path of errors inside flattened structs. So the loader keeps track of where each value came
//! from and, when serde cannot say which key failed, finds it: by the offending value, or by
//! reverting one key at a time to its default.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Loaded, Result, Warning};

/// Keys of the original services' configs (GHGA service-commons: server, logging and
/// OpenTelemetry settings) that Tessera does not implement. A deployment's config naming
/// them still loads: each is dropped with a [`Warning::IgnoredKey`], unless the service's
/// config has a key of that name.
pub const ORIGINAL_IGNORED_KEYS: [&str; 4] = [
    "auto_reload",
    "log_traceback",
    "enable_opentelemetry",
    "otel_trace_sampling_rate",
];

/// Bounds the repair loop; each repair consumes one environment entry, so this is never hit
/// by a real config.
const MAX_ATTEMPTS: usize = 512;

/// Loads a config of type `C` for one service prefix (`wps` reads `WPS_*` and `.wps.yaml`).
///
/// [`Loader::from_process`] reads the real environment and searches `./` and `$HOME`;
/// [`Loader::new`] starts empty, so tests can pass their own variables and files.
///
/// Besides the YAML file and the environment it reads, as pydantic-settings does for the
/// originals: `.env` files ([`Loader::dotenv_file`]: `<PREFIX>_<KEY>=value` lines) and a
/// secrets directory ([`Loader::secrets_dir`] or `<PREFIX>_SECRETS_DIR`: one file per key,
/// named like its variable, e.g. `WPS_MONGO_DSN`, holding the value). Precedence, lowest
/// first: defaults < YAML < secrets < `.env` files (later ones win) < environment.
#[derive(Debug, Clone)]
pub struct Loader {
    prefix: String,
    env: Vec<(String, String)>,
    yaml_file: Option<PathBuf>,
    search_dirs: Vec<PathBuf>,
    dotenv_files: Vec<PathBuf>,
    secrets_dir: Option<PathBuf>,
    ignored: BTreeSet<String>,
    /// Variables without the prefix that set a key (upper-cased name, key), below the
    /// prefixed variable of the same key.
    aliases: Vec<(String, String)>,
    /// Top-level keys read from their bare variable (also in `aliases`); docs and errors
    /// name that variable.
    unprefixed: Vec<String>,
}

/// Where a variable came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VarSource {
    Process,
    Dotenv(PathBuf),
    Secret(PathBuf),
}

impl Loader {
    /// A loader with no environment, no explicit YAML file, no directories to search, no
    /// `.env` file and no secrets directory; it ignores [`ORIGINAL_IGNORED_KEYS`].
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            env: Vec::new(),
            yaml_file: None,
            search_dirs: Vec::new(),
            dotenv_files: Vec::new(),
            secrets_dir: None,
            ignored: ORIGINAL_IGNORED_KEYS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            aliases: Vec::new(),
            unprefixed: Vec::new(),
        }
    }

    /// A loader over the process environment that searches `./.<prefix>.yaml`, then
    /// `$HOME/.<prefix>.yaml`, and reads `./.env` and `/secrets/.env` when they exist (the
    /// originals' `env_file`). Variables that are not valid UTF-8 are skipped.
    pub fn from_process(prefix: &str) -> Self {
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let home = env
            .iter()
            .find(|(k, v)| k == "HOME" && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v));
        let mut loader = Self::new(prefix).env(env).search_dir(".");
        if let Some(home) = home {
            loader = loader.search_dir(home);
        }
        loader.dotenv_file(".env").dotenv_file("/secrets/.env")
    }

    /// Reads `<PREFIX>_<KEY>=value` lines from this file when it exists, above the secrets
    /// and the YAML file but below the environment (and files added later). Lines are
    /// python-dotenv's: `#` comments, optional `export `, single or double quotes.
    #[must_use]
    pub fn dotenv_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.dotenv_files.push(path.into());
        self
    }

    /// Reads secrets from this directory (it must exist): a file named like a key's
    /// variable (`WPS_MONGO_DSN`, case-insensitive) holds its value, surrounding
    /// whitespace removed (pydantic-settings' `secrets_dir`). Without this, the directory
    /// named by `<PREFIX>_SECRETS_DIR` in the environment, if any.
    #[must_use]
    pub fn secrets_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.secrets_dir = Some(dir.into());
        self
    }

    /// Also accepts these keys with a warning instead of failing, when the config has no
    /// such key (besides [`ORIGINAL_IGNORED_KEYS`]).
    #[must_use]
    pub fn ignore_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Self {
        self.ignored.extend(keys.into_iter().map(str::to_owned));
        self
    }

    /// The variable naming the secrets directory, e.g. `WPS_SECRETS_DIR`.
    pub fn secrets_dir_var(&self) -> String {
        format!("{}_SECRETS_DIR", self.env_prefix())
    }

    /// Replaces the environment the loader reads.
    #[must_use]
    pub fn env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env = vars.into_iter().collect();
        self
    }

    /// Uses this YAML file (it must exist), ignoring `<PREFIX>_CONFIG_YAML` and the search.
    #[must_use]
    pub fn yaml_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.yaml_file = Some(path.into());
        self
    }

    /// Lets the unprefixed variable `var` (case-insensitive) set `key`, for services whose
    /// original read a few variables without the common prefix (os-conductor's
    /// `ACCESS_KEY_EXPIRES_IN`). `<PREFIX>_<KEY>` wins when both are set.
    #[must_use]
    pub fn alias(mut self, var: &str, key: &str) -> Self {
        self.aliases.push((var.to_uppercase(), key.to_owned()));
        self
    }

    /// Adds a directory to look for `.<prefix>.yaml` in, after the ones added before.
    #[must_use]
    pub fn search_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.search_dirs.push(dir.into());
        self
    }

    /// Top-level keys also read from the bare variable `<KEY>` (upper-cased, no prefix), for
    /// services that must keep an original's variable names (`ARGO_NAMESPACE`). The prefixed
    /// variable wins when both are set; generated docs name the bare one.
    #[must_use]
    pub fn unprefixed(mut self, keys: &[&str]) -> Self {
        for key in keys {
            let key = key.to_lowercase();
            self.aliases.push((key.to_uppercase(), key.clone()));
            self.unprefixed.push(key);
        }
        self
    }

    /// The variable naming the YAML file, e.g. `WPS_CONFIG_YAML`.
    pub fn config_yaml_var(&self) -> String {
        format!("{}_CONFIG_YAML", self.env_prefix())
    }

    /// The YAML file name searched for, e.g. `.wps.yaml`.
    pub fn yaml_file_name(&self) -> String {
        format!(".{}.yaml", self.prefix.to_lowercase())
    }

    /// The environment variable for a (possibly nested) key: `WPS_PORT`, `WPS_AUTH__KID`.
    pub fn env_var_for(&self, key: &str) -> String {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        self.env_name(&path)
    }

    fn env_name(&self, path: &[String]) -> String {
        match path {
            [key] if self.unprefixed.contains(key) => key.to_uppercase(),
            _ => env_name(&self.env_prefix(), path),
        }
    }

    fn env_prefix(&self) -> String {
        self.prefix.to_uppercase()
    }

    /// Loads `C` from its `Default`, the YAML file, the secrets, the `.env` files and the
    /// environment, highest last. Warnings (see [`Loader::load_with_warnings`]) are
    /// written to stderr, since logging may not run yet.
    pub fn load<C>(&self) -> Result<C>
    where
        C: DeserializeOwned + Serialize + Default,
    {
        let loaded = self.load_with_warnings::<C>()?;
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(loaded.config)
    }

    /// Loads `C` like [`Loader::load`] and returns what deserves a warning instead of
    /// printing it, for the caller to log once logging runs: keys of the original that are
    /// accepted but ignored, and `<PREFIX>_*` variables (or `.env` lines, secret files)
    /// that name no key, e.g. a misspelt one that would otherwise leave its key at the
    /// default in silence.
    pub fn load_with_warnings<C>(&self) -> Result<Loaded<C>>
    where
        C: DeserializeOwned + Serialize + Default,
    {
        let defaults = defaults_dict(&C::default())?;
        let mut known: BTreeSet<String> = defaults.keys().cloned().collect();
        known.extend(required_keys::<C>(&defaults));
        let mut warnings = Vec::new();
        let mut yaml = self.read_yaml()?;
        if let Some((path, dict)) = &mut yaml {
            let ignored: Vec<String> = dict
                .keys()
                .filter(|k| self.ignored.contains(*k) && !known.contains(*k))
                .cloned()
                .collect();
            for key in ignored {
                dict.remove(&key);
                warnings.push(Warning::IgnoredKey {
                    key,
                    origin: Origin::Yaml(path).to_string(),
                });
            }
        }
        let mut env = self.env_entries(&defaults, &known)?;
        env.retain(|entry| {
            let ignore = entry.path.len() == 1
                && self.ignored.contains(&entry.path[0])
                && !known.contains(&entry.path[0]);
            if ignore {
                warnings.push(Warning::IgnoredKey {
                    key: entry.path[0].clone(),
                    origin: Origin::Var(entry).to_string(),
                });
            }
            !ignore
        });
        let suspects: Vec<String> = yaml
            .as_ref()
            .map(|(_, dict)| {
                dict.keys()
                    .filter(|k| !known.contains(*k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut sources = Sources {
            defaults,
            yaml,
            env,
        };
        let mut poisoned_env = BTreeSet::new();
        for _ in 0..MAX_ATTEMPTS {
            match sources.merged(None).deserialize::<C>() {
                Ok(config) => {
                    // Keys the defaults do not show (skipped when serialising) may still be
                    // fields of C: a key is one if a poison value breaks an otherwise good config.
                    let untested: Vec<String> = sources
                        .inactive_env_keys()
                        .into_iter()
                        .filter(|k| poisoned_env.insert(k.clone()))
                        .collect();
                    let mut activated = false;
                    for key in untested {
                        if sources.consumes::<C>(&key) {
                            sources.activate(&key);
                            activated = true;
                        }
                    }
                    if activated {
                        continue;
                    }
                    if let Some(unknown) = suspects.iter().find(|k| !sources.consumes::<C>(k)) {
                        return Err(self.unknown_yaml_key(&sources, unknown));
                    }
                    warnings.extend(sources.env.iter().filter(|e| !e.active).map(|e| {
                        Warning::UnknownVariable {
                            name: e.var.clone(),
                            origin: Origin::Var(e).to_string(),
                        }
                    }));
                    return Ok(Loaded { config, warnings });
                }
                Err(err) => {
                    if sources.repair(&err) {
                        continue;
                    }
                    // A missing key next to an unknown one is most likely a typo of it.
                    if err.missing()
                        && let Some(unknown) = suspects.first()
                    {
                        return Err(self.unknown_yaml_key(&sources, unknown));
                    }
                    return Err(self.explain::<C>(&sources, err));
                }
            }
        }
        Err(Error::Invalid(
            "config could not be resolved: too many repair attempts".into(),
        ))
    }

    fn unknown_yaml_key(&self, sources: &Sources, key: &str) -> Error {
        Error::UnknownKey {
            key: key.to_owned(),
            origin: sources.origin(&[key.to_owned()]).to_string(),
        }
    }

    /// Picks the YAML file: explicit path, then `<PREFIX>_CONFIG_YAML`, then the search dirs.
    fn read_yaml(&self) -> Result<Option<(PathBuf, Dict)>> {
        let named = match &self.yaml_file {
            Some(path) => Some((path.clone(), "the caller".to_owned())),
            None => {
                let var = self.config_yaml_var();
                self.env
                    .iter()
                    .find(|(k, v)| k.to_uppercase() == var && !v.is_empty())
                    .map(|(k, v)| (PathBuf::from(v), k.clone()))
            }
        };
        let path = match named {
            Some((path, named_by)) => {
                if !path.is_file() {
                    return Err(Error::ConfigFileMissing { path, named_by });
                }
                path
            }
            None => {
                let name = self.yaml_file_name();
                match self
                    .search_dirs
                    .iter()
                    .map(|dir| dir.join(&name))
                    .find(|p| p.is_file())
                {
                    Some(path) => path,
                    None => return Ok(None),
                }
            }
        };
        let dict = read_yaml_dict(&path)?;
        Ok(Some((path, dict)))
    }

    /// The variables of every source, each name once: secrets < `.env` files < environment.
    fn variables(&self) -> Result<Vec<(String, String, VarSource)>> {
        let prefix = format!("{}_", self.env_prefix());
        let mut by_name: BTreeMap<String, (String, String, VarSource)> = BTreeMap::new();
        let mut add = |name: String, value: String, source: VarSource| {
            by_name.insert(name.to_uppercase(), (name, value, source));
        };
        let secrets_var = self.secrets_dir_var();
        let secrets = match &self.secrets_dir {
            Some(dir) => Some((dir.clone(), "the caller".to_owned())),
            None => self
                .env
                .iter()
                .find(|(k, v)| k.to_uppercase() == secrets_var && !v.is_empty())
                .map(|(k, v)| (PathBuf::from(v), k.clone())),
        };
        if let Some((dir, named_by)) = secrets {
            for (name, value, path) in read_secrets(&dir, &prefix, named_by)? {
                add(name, value, VarSource::Secret(path));
            }
        }
        for path in &self.dotenv_files {
            if !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(path).map_err(|err| Error::ConfigFileRead {
                path: path.clone(),
                message: err.to_string(),
            })?;
            for (name, value) in parse_dotenv(&text) {
                add(name, value, VarSource::Dotenv(path.clone()));
            }
        }
        for (name, value) in &self.env {
            add(name.clone(), value.clone(), VarSource::Process);
        }
        Ok(by_name.into_values().collect())
    }

    fn env_entries(&self, defaults: &Dict, known: &BTreeSet<String>) -> Result<Vec<EnvEntry>> {
        let prefix = format!("{}_", self.env_prefix());
        let config_var = self.config_yaml_var();
        let secrets_var = self.secrets_dir_var();
        let mut entries: Vec<EnvEntry> = self
            .variables()?
            .into_iter()
            .filter_map(|(name, raw, source)| {
                let upper = name.to_uppercase();
                if upper == config_var || upper == secrets_var {
                    return None;
                }
                let (rest, alias) = match upper.strip_prefix(&prefix) {
                    Some(rest) => (rest.to_lowercase(), false),
                    None => (
                        self.aliases
                            .iter()
                            .find(|(var, _)| *var == upper)
                            .map(|(_, key)| key.to_lowercase())?,
                        true,
                    ),
                };
                let path: Vec<String> = rest.split("__").map(str::to_owned).collect();
                if path.iter().any(String::is_empty) {
                    return None;
                }
                let (parsed, typed) = parse_env_value(&raw, lookup(defaults, &path));
                Some(EnvEntry {
                    var: name,
                    source,
                    alias,
                    active: known.contains(&path[0]),
                    path,
                    raw,
                    parsed,
                    typed,
                    as_raw: false,
                })
            })
            .collect();
        // Whole values first so that nested `A__B` overrides land on top of `A`; aliases
        // before prefixed variables, which override them.
        entries.sort_by(|a, b| {
            (a.path.len(), !a.alias, &a.var).cmp(&(b.path.len(), !b.alias, &b.var))
        });
        Ok(entries)
    }

    fn explain<C: DeserializeOwned>(&self, sources: &Sources, err: figment::Error) -> Error {
        let mut path = err.path.clone();
        match &err.kind {
            Kind::MissingField(field) => {
                path.push(field.to_string());
                Error::MissingKey {
                    key: path.join("."),
                    env: self.env_name(&path),
                    file: self.yaml_file_name(),
                }
            }
            Kind::UnknownField(field, _) => {
                // figment already put the offending key on the path.
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                Error::UnknownKey {
                    key: path.join("."),
                    origin: sources.origin(&path).to_string(),
                }
            }
            kind => {
                if path.is_empty() {
                    path = sources.culprit::<C>(&err).unwrap_or_default();
                }
                if path.is_empty() {
                    return Error::Invalid(kind.to_string());
                }
                Error::InvalidValue {
                    key: path.join("."),
                    env: self.env_name(&path),
                    origin: sources.origin(&path).to_string(),
                    message: kind.to_string(),
                }
            }
        }
    }
}

/// Serialises a config value into the dict of its top-level keys.
pub(crate) fn defaults_dict<C: Serialize>(value: &C) -> Result<Dict> {
    match Value::serialize(value) {
        Ok(Value::Dict(_, dict)) => Ok(dict),
        Ok(other) => Err(Error::Shape(format!(
            "serialises to {} instead of a map",
            other.to_actual()
        ))),
        Err(err) => Err(Error::Shape(err.to_string())),
    }
}

fn read_yaml_dict(path: &Path) -> Result<Dict> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::ConfigFileRead {
        path: path.to_owned(),
        message: err.to_string(),
    })?;
    // An empty file or one with only comments is an empty config, not an error.
    serde_yaml::from_str::<Option<Dict>>(&text)
        .map(Option::unwrap_or_default)
        .map_err(|err| Error::ConfigFileRead {
            path: path.to_owned(),
            message: err.to_string(),
        })
}

/// `WPS` + `["auth", "kid"]` -> `WPS_AUTH__KID`; list indexes are not part of the name.
fn env_name(prefix: &str, path: &[String]) -> String {
    let parts: Vec<String> = path
        .iter()
        .take_while(|p| !p.chars().all(|c| c.is_ascii_digit()))
        .map(|p| p.to_uppercase())
        .collect();
    format!("{prefix}_{}", parts.join("__"))
}

fn lookup<'a>(dict: &'a Dict, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = dict.get(first)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        Value::Dict(_, inner) => lookup(inner, rest),
        _ => None,
    }
}

/// Parses an environment value the way figment does (numbers, bools, `[..]`, `{k=v}`), plus
/// JSON or inline YAML for lists and maps. Where the default says the key is a string (or a
/// bool) the type is known and the raw text is used (or read leniently). Returns whether the
/// type was known, so the value is final.
fn parse_env_value(raw: &str, default: Option<&Value>) -> (Value, bool) {
    match default {
        Some(Value::String(..)) => return (Value::from(raw), true),
        Some(Value::Bool(..)) => {
            return match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => (Value::from(true), true),
                "false" | "0" | "no" | "off" => (Value::from(false), true),
                _ => (Value::from(raw), true),
            };
        }
        _ => {}
    }
    let parsed = match raw.parse::<Value>() {
        Ok(value) => value,
        Err(never) => match never {},
    };
    let trimmed = raw.trim_start();
    if matches!(parsed, Value::String(..))
        && (trimmed.starts_with('[') || trimmed.starts_with('{'))
        && let Ok(Some(value)) = serde_yaml::from_str::<Option<Value>>(raw)
    {
        return (value, false);
    }
    (parsed, false)
}

fn merge_into(base: &mut Dict, over: &Dict) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Dict(_, inner)), Value::Dict(_, over_inner)) => {
                merge_into(inner, over_inner)
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn set_path(base: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            base.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = base
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Finds the path of the first value inside `value` that serde reported as `actual`.
fn find_actual(value: &Value, actual: &Actual, prefix: Vec<String>) -> Option<Vec<String>> {
    if value.to_actual() == *actual {
        return Some(prefix);
    }
    match value {
        Value::Dict(_, dict) => dict.iter().find_map(|(k, v)| {
            let mut path = prefix.clone();
            path.push(k.clone());
            find_actual(v, actual, path)
        }),
        Value::Array(_, items) => items.iter().enumerate().find_map(|(i, v)| {
            let mut path = prefix.clone();
            path.push(i.to_string());
            find_actual(v, actual, path)
        }),
        _ => None,
    }
}

/// Keys that `C` requires but its serialised default leaves out.
///
/// Found by deserialising the defaults and filling each reported missing field with the first
/// placeholder its type accepts. Best effort: a type that accepts none of the placeholders
/// ends the search.
pub(crate) fn required_keys<C: DeserializeOwned>(defaults: &Dict) -> Vec<String> {
    let placeholders: Vec<Value> = vec![
        Value::from(""),
        Value::from(0u64),
        Value::from(false),
        Value::from(Vec::<Value>::new()),
        Value::from(Dict::new()),
        Value::from("http://localhost"),
        Value::from("00000000-0000-4000-8000-000000000000"),
        Value::from("1970-01-01T00:00:00Z"),
        Value::from(0.5f64),
    ];
    let mut probe = defaults.clone();
    let mut found: Vec<String> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let key = match Value::from(probe.clone()).deserialize::<C>() {
            Err(err) if err.path.is_empty() => match err.kind {
                Kind::MissingField(key) if !found.iter().any(|k| *k == key) => key.to_string(),
                _ => break,
            },
            _ => break,
        };
        found.push(key.clone());
        let accepted = placeholders.iter().any(|placeholder| {
            probe.insert(key.clone(), placeholder.clone());
            match Value::from(probe.clone()).deserialize::<C>() {
                Ok(_) => true,
                Err(err) => {
                    err.path.is_empty() && matches!(&err.kind, Kind::MissingField(k) if *k != key)
                }
            }
        });
        if !accepted {
            break;
        }
    }
    found
}

#[derive(Debug, Clone)]
struct EnvEntry {
    var: String,
    source: VarSource,
    /// Set by an alias, not a prefixed variable.
    alias: bool,
    path: Vec<String>,
    raw: String,
    parsed: Value,
    /// The default told the type: `parsed` is final.
    typed: bool,
    /// Use `raw` as a plain string instead of `parsed`.
    as_raw: bool,
    /// Whether the entry's top-level key is known to be a config key.
    active: bool,
}

impl EnvEntry {
    fn value(&self) -> Value {
        if self.as_raw {
            Value::from(self.raw.as_str())
        } else {
            self.parsed.clone()
        }
    }
}

/// Where a value came from, for error messages.
enum Origin<'a> {
    Defaults,
    Yaml(&'a Path),
    Var(&'a EnvEntry),
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Defaults => f.write_str("defaults"),
            Origin::Yaml(path) => write!(f, "YAML file {}", path.display()),
            Origin::Var(entry) => match &entry.source {
                VarSource::Process => write!(f, "environment variable {}", entry.var),
                VarSource::Dotenv(path) => write!(f, "{} in {}", entry.var, path.display()),
                VarSource::Secret(path) => write!(f, "secret file {}", path.display()),
            },
        }
    }
}

/// The secrets in `dir`: regular files whose name starts with `prefix` (any case), as
/// (name, trimmed content, path).
fn read_secrets(
    dir: &Path,
    prefix: &str,
    named_by: String,
) -> Result<Vec<(String, String, PathBuf)>> {
    if !dir.is_dir() {
        return Err(Error::ConfigFileMissing {
            path: dir.to_owned(),
            named_by,
        });
    }
    let read_error = |path: &Path, err: std::io::Error| Error::ConfigFileRead {
        path: path.to_owned(),
        message: err.to_string(),
    };
    let mut secrets = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_error(dir, e))? {
        let entry = entry.map_err(|e| read_error(dir, e))?;
        let path = entry.path();
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.to_uppercase().starts_with(prefix) || !path.is_file() {
            continue;
        }
        let value = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
        secrets.push((name, value.trim().to_owned(), path));
    }
    Ok(secrets)
}

/// `KEY=value` pairs of a `.env` file, read like python-dotenv: blank lines and `#`
/// comments skipped, an optional `export `, values in double quotes (with `\n`, `\"` and
/// `\\` escapes) or single quotes (literal), else up to a ` #` comment, trimmed.
pub(crate) fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let key = key.trim();
            if key.is_empty() {
                return None;
            }
            let value = value.trim();
            let value = if let Some(quoted) = value.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some(other) => out.push(other),
                            None => out.push('\\'),
                        },
                        c => out.push(c),
                    }
                }
                out
            } else if let Some(quoted) = value.strip_prefix('\'') {
                quoted.split('\'').next().unwrap_or_default().to_owned()
            } else {
                match value.find(" #") {
                    Some(at) => value[..at].trim_end().to_owned(),
                    None => value.to_owned(),
                }
            };
            Some((key.to_owned(), value))
        })
        .collect()
}

struct Sources {
    defaults: Dict,
    yaml: Option<(PathBuf, Dict)>,
    env: Vec<EnvEntry>,
}

impl Sources {
    /// The layered value; `omit` drops one top-level key from the YAML file and environment.
    fn merged(&self, omit: Option<&str>) -> Value {
        let mut dict = self.defaults.clone();
        if let Some((_, yaml)) = &self.yaml {
            let mut yaml = yaml.clone();
            if let Some(key) = omit {
                yaml.remove(key);
            }
            merge_into(&mut dict, &yaml);
        }
        for entry in &self.env {
            if entry.active && omit != Some(entry.path[0].as_str()) {
                set_path(&mut dict, &entry.path, entry.value());
            }
        }
        Value::from(dict)
    }

    fn inactive_env_keys(&self) -> BTreeSet<String> {
        self.env
            .iter()
            .filter(|e| !e.active)
            .map(|e| e.path[0].clone())
            .collect()
    }

    fn activate(&mut self, key: &str) -> bool {
        let mut any = false;
        for entry in self
            .env
            .iter_mut()
            .filter(|e| !e.active && e.path[0] == key)
        {
            entry.active = true;
            any = true;
        }
        any
    }

    /// Whether `C` reads `key`: with everything else valid, a poison value must break it.
    fn consumes<C: DeserializeOwned>(&self, key: &str) -> bool {
        let base = match self.merged(None) {
            Value::Dict(_, dict) => dict,
            _ => return false,
        };
        [Value::from(true), Value::from(Dict::new())]
            .into_iter()
            .any(|poison| {
                let mut dict = base.clone();
                dict.insert(key.to_owned(), poison);
                match Value::from(dict).deserialize::<C>() {
                    Ok(_) => false,
                    // `deny_unknown_fields` rejects the key itself: it is not a field.
                    Err(err) => !matches!(&err.kind, Kind::UnknownField(k, _) if k == key),
                }
            })
    }

    /// Fixes what the environment got wrong before giving up: a required key whose variable was
    /// not recognised, or a value parsed as a number/bool/list where the field wants a string.
    fn repair(&mut self, err: &figment::Error) -> bool {
        match &err.kind {
            Kind::MissingField(field) => {
                let mut path = err.path.clone();
                path.push(field.to_string());
                self.activate(&path[0])
            }
            Kind::InvalidType(actual, _) => {
                let candidate = self.env.iter_mut().find(|e| {
                    e.active
                        && !e.typed
                        && !e.as_raw
                        && !matches!(e.parsed, Value::String(..))
                        && e.parsed.to_actual() == *actual
                        && (err.path.is_empty() || err.path == e.path)
                });
                match candidate {
                    Some(entry) => {
                        entry.as_raw = true;
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// The key path of an error serde reported without one (inside a flattened struct).
    fn culprit<C: DeserializeOwned>(&self, err: &figment::Error) -> Option<Vec<String>> {
        let actual = match &err.kind {
            Kind::InvalidType(actual, _) | Kind::InvalidValue(actual, _) => Some(actual.clone()),
            Kind::UnknownVariant(variant, _) => Some(Actual::Str(variant.clone())),
            _ => None,
        };
        if let Some(actual) = actual {
            let from_env = self
                .env
                .iter()
                .rev()
                .filter(|e| e.active)
                .find_map(|e| find_actual(&e.value(), &actual, e.path.clone()));
            let from_yaml = || {
                let (_, yaml) = self.yaml.as_ref()?;
                find_actual(&Value::from(yaml.clone()), &actual, Vec::new())
            };
            let from_defaults =
                || find_actual(&Value::from(self.defaults.clone()), &actual, Vec::new());
            if let Some(path) = from_env
                .or_else(from_yaml)
                .or_else(from_defaults)
                .filter(|p| !p.is_empty())
            {
                return Some(path);
            }
        }
        // No value to match: revert one provided key at a time until the error goes away.
        let mut provided: BTreeSet<String> = self
            .env
            .iter()
            .filter(|e| e.active)
            .map(|e| e.path[0].clone())
            .collect();
        if let Some((_, yaml)) = &self.yaml {
            provided.extend(yaml.keys().cloned());
        }
        provided
            .into_iter()
            .find_map(|key| match self.merged(Some(&key)).deserialize::<C>() {
                Ok(_) => Some(vec![key]),
                Err(other) => {
                    let missing_self = matches!(&other.kind, Kind::MissingField(k) if *k == key);
                    (other.kind != err.kind && !missing_self).then(|| vec![key])
                }
            })
    }

    fn origin(&self, path: &[String]) -> Origin<'_> {
        let from_env = self
            .env
            .iter()
            .rev()
            .find(|e| e.active && (path.starts_with(&e.path) || e.path.starts_with(path)));
        if let Some(entry) = from_env {
            return Origin::Var(entry);
        }
        if let (Some((file, yaml)), Some(first)) = (&self.yaml, path.first())
            && yaml.contains_key(first)
        {
            return Origin::Yaml(file);
        }
        Origin::Defaults
    }
}
