//! The background queue: one worker runs scans, deletions and share copies one after the
//! other, so a copy and a scan of the same workspace never interleave (§A10.14). Work that
//! a restart would lose is found again from the records (`deleting` workspaces,
//! `initializing` shared copies) by [`crate::Uws::pending_tasks`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// Work for the background worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Record what is in a workspace.
    Scan(i64),
    /// Remove a `deleting` workspace's directory and row.
    Delete(i64),
    /// Copy a share's original into its copy, then mark the copy idle.
    Copy(i64),
}

/// The sending side: duplicates of a task already queued are dropped.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: mpsc::UnboundedSender<Task>,
    queued: Arc<Mutex<HashSet<Task>>>,
}

/// The receiving side, taken by the worker part.
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::UnboundedReceiver<Task>,
    queued: Arc<Mutex<HashSet<Task>>>,
}

/// A new queue.
pub fn queue() -> (Queue, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(Mutex::new(HashSet::new()));
    (
        Queue {
            tx,
            queued: queued.clone(),
        },
        Receiver { rx, queued },
    )
}

impl Queue {
    /// Queues `task` unless it is already waiting.
    pub fn push(&self, task: Task) {
        let fresh = self
            .queued
            .lock()
            .map(|mut q| q.insert(task))
            .unwrap_or(true);
        if fresh && self.tx.send(task).is_err() {
            tracing::warn!(?task, "background worker stopped; task dropped");
        }
    }
}

impl Receiver {
    /// The next task; `None` when every sender is gone.
    pub async fn next(&mut self) -> Option<Task> {
        let task = self.rx.recv().await?;
        if let Ok(mut q) = self.queued.lock() {
            q.remove(&task);
        }
        Some(task)
    }
}
