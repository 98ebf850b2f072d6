//! Domain core of the OGDC runner (spec `conductor_ogdc.md` §B, v0.3.0): recipes, users and
//! their passwords and tokens, runs, and the workflow engine port.
//!
//! Layout:
//! - [`recipe`]: `meta.yml` (unknown fields refused), `recipe.sh` commands, inputs and
//!   outputs, parsed once into a [`recipe::Recipe`];
//! - [`users`]: the user collection, Argon2id passwords on a bounded pool
//!   ([`users::Passwords`]) and the HS256 access tokens ([`users::Tokens`]);
//! - [`runs`]: a run of a recipe, its owner and phase;
//! - [`engine`]: the workflow engine port ([`engine::WorkflowEngine`]) and the recipe
//!   loader port ([`engine::RecipeLoader`]);
//! - [`runner`]: [`runner::Runner`], the use cases over them (submit, status, output,
//!   list, cancel, logs, users).

pub mod engine;
pub mod recipe;
pub mod runner;
pub mod runs;
pub mod users;

pub use engine::{EngineStatus, RecipeLoader, WorkflowEngine};
pub use recipe::{Output, Recipe};
pub use runner::{Caller, Ports, Runner};
pub use runs::{Phase, Run, RunOutput};

/// Errors of the use cases.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The recipe is invalid or cannot be read; the message is for the submitter.
    #[error("{0}")]
    Recipe(#[from] recipe::Error),
    /// No such run, or not the caller's.
    #[error("run {0} not found")]
    RunNotFound(String),
    /// The run has no output to hand out (yet); the message says why.
    #[error("{0}")]
    NoOutput(String),
    /// A user with that name exists.
    #[error("User with username {0} already exists.")]
    UserExists(String),
    /// Only the admin may do that.
    #[error("Access token must belong to admin.")]
    NotAdmin,
    /// The workflow engine failed.
    #[error("workflow engine: {0}")]
    Engine(String),
    /// Storage failed.
    #[error("storage")]
    Storage(#[from] tessera_kit::dao::Error),
    /// Object storage failed.
    #[error("object storage")]
    Objects(#[from] tessera_kit::objects::Error),
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Hashing(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
