//! Layered configuration for Tessera services (GHGA's precedence, on figment's values).
//!
//! A service config is one flat serde struct with `Default`; provider fragments (`HttpConfig`,
//! `MongoConfig`, …) are `#[serde(flatten)]`ed into it. [`load`] layers, lowest first:
//!
//! 1. `C::default()`, serialised;
//! 2. a YAML file: the path in `<PREFIX>_CONFIG_YAML` (which must exist), else
//!    `./.<prefix>.yaml`, else `~/.<prefix>.yaml`;
//! 3. file secrets: a directory ([`Loader::secrets_dir`], else `<PREFIX>_SECRETS_DIR`) with
//!    one file per key named like its variable (pydantic-settings' `secrets_dir`);
//! 4. `.env` files: `./.env`, then `/secrets/.env`, with `<PREFIX>_<KEY>=value` lines
//!    (pydantic-settings' `env_file`);
//! 5. environment variables `<PREFIX>_<KEY>` (case-insensitive; `__` separates nested keys;
//!    values parsed like figment: numbers, bools, `[..]` lists, and lists or maps as JSON or
//!    inline YAML).
//!
//! **Warnings** ([`Loader::load_with_warnings`], [`load_with_warnings`]): variables (or
//! `.env` lines, secret files) with the prefix that name no key load nothing and are
//! reported, as is a key of the originals' configs that Tessera accepts but ignores
//! ([`ORIGINAL_IGNORED_KEYS`], [`Loader::ignore_keys`]). [`load`] writes them to stderr,
//! since logging may not run yet when the config loads.
//!
//! **Required keys** are fields left out of the serialised default, e.g. with
//! `#[serde(skip_serializing_if = "tessera_config::is_default")]`; loading fails with
//! [`Error::MissingKey`] until the YAML file or the environment sets them. Unknown keys in the
//! YAML file are an error even for flattened configs (where `deny_unknown_fields` cannot be
//! used). Every error names the key, its environment variable and where the bad value came from.
//!
//! Layout: `loader` (layering, repair and error attribution), `secret` ([`Secret`]), and here
//! the entry points plus [`example_yaml`] and [`describe`] for generated docs and `--help`.

mod loader;
mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use loader::{Loader, ORIGINAL_IGNORED_KEYS};
pub use secret::{MASK, Secret};

/// Errors of loading or describing a config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The YAML file named explicitly (by `<PREFIX>_CONFIG_YAML` or the caller) is not there.
    #[error("config file {} named by {named_by} does not exist", path.display())]
    ConfigFileMissing {
        /// The path given.
        path: PathBuf,
        /// The variable that named it, or "the caller".
        named_by: String,
    },
    /// The YAML file could not be read or parsed.
    #[error("cannot read config file {}: {message}", path.display())]
    ConfigFileRead {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A key the config does not have.
    #[error("unknown config key {key:?} in {origin}")]
    UnknownKey {
        /// The key, dotted if nested.
        key: String,
        /// Where it was set.
        origin: String,
    },
    /// A required key is set nowhere.
    #[error("missing config key {key:?} (set {env} or put it in {file})")]
    MissingKey {
        /// The key, dotted if nested.
        key: String,
        /// The environment variable that sets it.
        env: String,
        /// The YAML file name searched for.
        file: String,
    },
    /// A key has a value of the wrong type or form.
    #[error("invalid value for config key {key:?} (env {env}, from {origin}): {message}")]
    InvalidValue {
        /// The key, dotted if nested.
        key: String,
        /// The environment variable that sets it.
        env: String,
        /// Where the bad value came from.
        origin: String,
        /// What serde said.
        message: String,
    },
    /// The config is invalid and no single key could be blamed.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// The config type does not serialise to a map of keys, or YAML rendering failed.
    #[error("config type cannot be represented as keys: {0}")]
    Shape(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something a loaded config deserves a warning for; the config loaded all the same.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A key of the original service that is accepted but has no effect here (see
    /// [`ORIGINAL_IGNORED_KEYS`] and [`Loader::ignore_keys`]).
    IgnoredKey {
        /// The key.
        key: String,
        /// Where it was set.
        origin: String,
    },
    /// A variable with the service's prefix (from the environment, a `.env` file or the
    /// secrets directory) that names no key: a misspelt key stays at its default.
    UnknownVariable {
        /// The variable, e.g. `WPS_MONGO_DNS`.
        name: String,
        /// Where it was set.
        origin: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IgnoredKey { key, origin } => write!(
                f,
                "config key {key:?} (from {origin}) is accepted for compatibility with the original service but has no effect"
            ),
            Self::UnknownVariable { origin, .. } => {
                write!(f, "{origin} names no config key and is ignored")
            }
        }
    }
}

/// A loaded config and its warnings, for the caller to log once logging runs.
#[derive(Debug, Clone)]
pub struct Loaded<C> {
    /// The config.
    pub config: C,
    /// What deserves a warning, in no particular order of importance.
    pub warnings: Vec<Warning>,
}

/// Loads `C` from the process environment, `./.<prefix>.yaml` and `~/.<prefix>.yaml`.
pub fn load<C>(prefix: &str) -> Result<C>
where
    C: DeserializeOwned + Serialize + Default,
{
    Loader::from_process(prefix).load()
}

/// Like [`load`], returning the warnings instead of writing them to stderr.
pub fn load_with_warnings<C>(prefix: &str) -> Result<Loaded<C>>
where
    C: DeserializeOwned + Serialize + Default,
{
    Loader::from_process(prefix).load_with_warnings()
}

/// Loads `C` from the given environment only; `yaml_path` (which must exist) or else the file
/// named by `<PREFIX>_CONFIG_YAML` in `env`. No directory is searched, so tests stay hermetic.
pub fn load_from<C>(
    prefix: &str,
    yaml_path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<C>
where
    C: DeserializeOwned + Serialize + Default,
{
    let mut loader = Loader::new(prefix).env(env);
    if let Some(path) = yaml_path {
        loader = loader.yaml_file(path);
    }
    loader.load()
}

/// For `#[serde(skip_serializing_if = "tessera_config::is_default")]` on required fields.
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// One config key for `--help` and generated docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key as written in YAML.
    pub key: String,
    /// The environment variable that sets it.
    pub env: String,
    /// The default as compact JSON; `None` for a required key.
    pub default: Option<String>,
}

/// Every top-level key of `C`, sorted, with its variable and default.
pub fn describe<C>(prefix: &str) -> Result<Vec<KeyDoc>>
where
    C: DeserializeOwned + Serialize + Default,
{
    describe_with::<C>(&Loader::new(prefix))
}

/// [`describe`] naming the variables as `loader` reads them (e.g. its unprefixed keys).
pub fn describe_with<C>(loader: &Loader) -> Result<Vec<KeyDoc>>
where
    C: DeserializeOwned + Serialize + Default,
{
    keys_with_defaults::<C>()?
        .into_iter()
        .map(|(key, default)| {
            let default = default
                .map(|v| serde_json::to_string(&v).map_err(|e| Error::Shape(e.to_string())))
                .transpose()?;
            Ok(KeyDoc {
                env: loader.env_var_for(&key),
                key,
                default,
            })
        })
        .collect()
}

/// [`describe`] as aligned text lines for a `--help` footer.
pub fn help_text<C>(prefix: &str) -> Result<String>
where
    C: DeserializeOwned + Serialize + Default,
{
    help_text_with::<C>(&Loader::new(prefix))
}

/// [`help_text`] naming the variables as `loader` reads them.
pub fn help_text_with<C>(loader: &Loader) -> Result<String>
where
    C: DeserializeOwned + Serialize + Default,
{
    let docs = describe_with::<C>(loader)?;
    let width = docs.iter().map(|d| d.env.len()).max().unwrap_or(0);
    let mut out = format!(
        "Configuration (defaults < {} or {} < environment):\n",
        loader.config_yaml_var(),
        loader.yaml_file_name()
    );
    for doc in docs {
        let default = doc.default.as_deref().unwrap_or("required");
        out.push_str(&format!("  {:width$}  {default}\n", doc.env));
    }
    Ok(out)
}

/// YAML of the defaults of `C` with sorted keys, under `header` as comment lines. Required keys
/// (no default) appear as commented-out lines so the file still loads.
pub fn example_yaml<C>(header: &str) -> Result<String>
where
    C: DeserializeOwned + Serialize + Default,
{
    let mut out = String::new();
    for line in header.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str(&format!("# {line}\n"));
        }
    }
    for (key, default) in keys_with_defaults::<C>()? {
        match default {
            Some(value) => {
                let mut one = Dict::new();
                one.insert(key, value);
                let yaml = serde_yaml::to_string(&one).map_err(|e| Error::Shape(e.to_string()))?;
                out.push_str(&yaml);
            }
            None => out.push_str(&format!("# {key}: <required, no default>\n")),
        }
    }
    Ok(out)
}

fn keys_with_defaults<C>() -> Result<BTreeMap<String, Option<Value>>>
where
    C: DeserializeOwned + Serialize + Default,
{
    let defaults = loader::defaults_dict(&C::default())?;
    let mut keys: BTreeMap<String, Option<Value>> = loader::required_keys::<C>(&defaults)
        .into_iter()
        .map(|k| (k, None))
        .collect();
    keys.extend(defaults.into_iter().map(|(k, v)| (k, Some(v))));
    Ok(keys)
}
