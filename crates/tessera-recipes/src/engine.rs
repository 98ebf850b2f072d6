//! The ports to the outside: the workflow engine that runs recipes (local executor, Argo
//! Workflows, Slurm) and the loader that fetches a recipe directory.

use async_trait::async_trait;

use crate::recipe::{self, Recipe};
use crate::runs::{Phase, RunOutput};

/// What an engine knows of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStatus {
    /// The phase.
    pub phase: Phase,
    /// Why it failed.
    pub message: Option<String>,
    /// Where the results are, when it succeeded.
    pub output: Option<RunOutput>,
}

/// Errors of an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine does not know the run (e.g. lost in a restart, or deleted).
    #[error("unknown run {0}")]
    Unknown(String),
    /// The engine cannot run this recipe.
    #[error("{0}")]
    Unsupported(String),
    /// The engine failed.
    #[error("{0}")]
    Failed(String),
}

/// A workflow engine.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait WorkflowEngine: Send + Sync + std::fmt::Debug {
    /// The engine's name (`local`, `argo`, `slurm`).
    fn name(&self) -> &'static str;

    /// Whether the recipe's data are already published (its `pvc` output exists). MUST
    /// answer false for other outputs.
    async fn published(&self, recipe: &Recipe) -> Result<bool, EngineError>;

    /// Removes the recipe's published data (`overwrite`). MUST succeed when there are none.
    async fn remove_published(&self, recipe: &Recipe) -> Result<(), EngineError>;

    /// Starts running `recipe` as run `name` and returns the engine's handle at once. MUST
    /// return `Unsupported` for a recipe it cannot run.
    async fn start(&self, name: &str, recipe: &Recipe) -> Result<String, EngineError>;

    /// The run's status. MUST return `Unknown` when the handle names no run.
    async fn status(&self, handle: &str) -> Result<EngineStatus, EngineError>;

    /// Stops the run; its phase becomes `Failed`. MUST succeed for a finished run.
    async fn cancel(&self, handle: &str) -> Result<(), EngineError>;

    /// The run's logs so far. MUST return `Unknown` when the handle names no run.
    async fn logs(&self, handle: &str) -> Result<String, EngineError>;
}

/// Fetches and validates a recipe directory.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait RecipeLoader: Send + Sync + std::fmt::Debug {
    /// The recipe at `path`. MUST return `PathNotAllowed` for a scheme or place that is
    /// not allowed (before any request), `MissingMeta` without `meta.yml`, and the
    /// validation error of an invalid recipe.
    async fn load(&self, path: &str) -> Result<Recipe, recipe::Error>;
}
