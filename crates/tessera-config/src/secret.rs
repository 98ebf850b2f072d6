//! A string that never shows up in logs, debug output or serialised config.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What every secret prints as.
pub const MASK: &str = "**********";

/// A secret string (password, private key, DSN with credentials).
///
/// `Debug` and `Display` always print [`MASK`]. `Serialize` prints [`MASK`] too, except for the
/// empty secret, which serialises as `""`: the loader layers the serialised `Default` of a
/// config under the YAML file, so a masked empty default would turn into a real value of ten
/// asterisks. An empty secret reveals nothing.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself; call this only where the value is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            serializer.serialize_str("")
        } else {
            serializer.serialize_str(MASK)
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_in_debug_display_and_serialize() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(secret.to_string(), MASK);
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            format!("\"{MASK}\"")
        );
        assert_eq!(secret.expose(), "hunter2");
        let nested = format!("{:?}", Some(secret));
        assert!(!nested.contains("hunter2"), "{nested}");
    }

    #[test]
    fn empty_secret_serialises_empty() {
        assert_eq!(serde_json::to_string(&Secret::default()).unwrap(), "\"\"");
        assert_eq!(format!("{:?}", Secret::default()), MASK);
    }

    #[test]
    fn deserialises_from_string_only() {
        let secret: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(secret.expose(), "abc");
        assert!(serde_json::from_str::<Secret>("12").is_err());
    }
}
