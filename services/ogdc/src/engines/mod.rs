//! Workflow engine providers: [`local`] (the embedded default).

pub mod local;
