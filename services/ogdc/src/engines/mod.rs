//! Workflow engine providers: [`local`] (the embedded default), [`slurm`] (batch jobs on
//! a Slurm cluster) and [`argo`] (Argo Workflows over the Argo Server REST API); [`steps`]
//! what the local executor and Slurm share.

pub mod argo;
pub mod local;
pub mod slurm;
pub mod steps;
