//! Workflow engine providers: [`local`] (the embedded default) and [`argo`] (Argo
//! Workflows over the Argo Server REST API).

pub mod argo;
pub mod local;
