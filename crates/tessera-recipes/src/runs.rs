//! A run of a recipe: its name (what the original called the workflow name), owner and
//! phase (Argo's phases).

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tessera_kit::dao::CollectionSpec;

/// Argo's workflow phases; `Succeeded`, `Failed` and `Error` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Accepted, not yet running.
    Pending,
    /// Running.
    Running,
    /// Done.
    Succeeded,
    /// A step failed (or the run was cancelled).
    Failed,
    /// The engine could not run it.
    Error,
}

impl Phase {
    /// Whether the phase can still change.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Error)
    }
}

/// Where a run's results are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RunOutput {
    /// On the workflow volume, under the recipe id.
    Pvc {
        /// The directory (or PVC sub path).
        path: String,
    },
    /// A zip in object storage.
    Object {
        /// The object key (ends in `.zip`).
        key: String,
    },
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The name (`<recipe-id>-shell-<5 random>`).
    pub name: String,
    /// Who submitted it.
    pub owner: String,
    /// The recipe id.
    pub recipe_id: String,
    /// What was submitted.
    pub recipe_path: String,
    /// The phase.
    pub phase: Phase,
    /// Why it failed, or what it is waiting for.
    #[serde(default)]
    pub message: Option<String>,
    /// The engine's handle, once started.
    #[serde(default)]
    pub engine_ref: Option<String>,
    /// Where the results are, once succeeded.
    #[serde(default)]
    pub output: Option<RunOutput>,
    /// When it was submitted.
    pub created: DateTime<Utc>,
    /// When its phase last changed.
    pub updated: DateTime<Utc>,
    /// The submission's `overwrite`, kept so that a run cut off before its start can be
    /// started again as it was asked for.
    #[serde(default)]
    pub overwrite: bool,
}

/// The run collection.
pub fn run_spec(collection: &str) -> CollectionSpec {
    CollectionSpec::new(collection, "name")
}

/// Kubernetes' `generateName`: the prefix cut to 58 characters, then 5 random ones.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let cut: String = prefix.chars().take(58).collect();
    let mut rng = rand::thread_rng();
    let suffix: String = (0..5)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("{cut}{suffix}")
}

/// The `generateName` of a workflow of recipe `id`: `<id[:58-len(suffix)]>-<suffix>-`.
pub fn workflow_prefix(id: &str, suffix: &str) -> String {
    let keep = 58usize.saturating_sub(suffix.len());
    let id: String = id.chars().take(keep).collect();
    format!("{id}-{suffix}-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_generate_name() {
        let name = generate_name(&workflow_prefix("seal-tags", "shell"));
        assert!(name.starts_with("seal-tags-shell-"));
        assert_eq!(name.len(), "seal-tags-shell-".len() + 5);
        let long = "x".repeat(80);
        let prefix = workflow_prefix(&long, "check-published");
        assert_eq!(prefix.len(), 58 - 15 + 17);
        let name = generate_name(&prefix);
        assert_eq!(name.len(), 63);
        assert!(Phase::Error.is_terminal() && !Phase::Running.is_terminal());
    }
}
