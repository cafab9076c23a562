//! Operations that take time, as on Compute: a write is checked when it arrives (a
//! refusal is an HTTP error and nothing is scheduled), but its change is applied only
//! when its operation completes, `operation_time` later. Until then the operation is
//! RUNNING, the resource still looks as before, and another write on the same
//! resource is refused with `400 resourceNotReady`.
//!
//! Completion happens on a timer task, or earlier on any `get`/`wait` that finds the
//! operation due, whichever comes first (idempotent: the change is taken out once).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::errors::ApiError;
use super::faults::{not_ready_message, NOT_READY};
use super::model::{OperationError, Scope, SimOperation};
use super::state::{Applied, State};
use super::{lock, now_timestamp, Shared};

/// A write's change, run against the state when its operation completes (and once
/// before, on a copy, to refuse what the API refuses outright).
pub type Change = Box<dyn Fn(&mut State) -> Applied + Send>;

#[derive(Default)]
pub struct Operations {
    ops: HashMap<String, SimOperation>,
    /// The changes of RUNNING operations, by operation name, with their target.
    pending: HashMap<String, (String, Change)>,
}

impl Operations {
    /// Is an operation running on `target_link`?
    fn busy(&self, target_link: &str) -> bool {
        self.pending.values().any(|(t, _)| t == target_link)
    }

    pub fn running(&self) -> usize {
        self.pending.len()
    }

    pub fn get(&self, scope: &Scope, name: &str) -> Option<SimOperation> {
        self.ops.get(name).filter(|op| &op.scope == scope).cloned()
    }
}

/// What a write targets and how it is named in its operation.
pub struct Write {
    pub scope: Scope,
    pub what: &'static str,
    pub target_link: String,
    pub target_id: u64,
    /// `projects/p/zones/z/instances/i`, for the `resourceNotReady` message.
    pub resource: String,
}

impl Shared {
    /// Accept a write: refuse it now if another operation runs on its target (or the
    /// dice say so), or if its change fails outright on a copy of the state; else
    /// start its operation, due `operation_time` from now.
    pub(crate) fn start_operation(
        self: &Arc<Self>,
        write: Write,
        change: Change,
        not_ready: bool,
    ) -> Result<SimOperation, ApiError> {
        let mut ops = lock(&self.operations);
        if not_ready || ops.busy(&write.target_link) {
            return Err(ApiError::new(
                400,
                NOT_READY,
                not_ready_message(&write.resource),
            ));
        }
        let (id, checked) = {
            let mut state = self.state();
            let mut trial = state.clone();
            (state.next_id(), change(&mut trial))
        };
        checked?;
        let operation_time = self.faults().faults.operation_time;
        let op = SimOperation {
            id,
            name: format!(
                "operation-{id}-{:016x}",
                id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ),
            scope: write.scope,
            operation_type: write.what.to_string(),
            target_link: write.target_link.clone(),
            target_id: write.target_id,
            inserted: now_timestamp(),
            done_at: Instant::now() + operation_time,
            result: None,
        };
        ops.ops.insert(op.name.clone(), op.clone());
        ops.pending
            .insert(op.name.clone(), (write.target_link, change));
        drop(ops);
        if operation_time.is_zero() {
            self.complete(&op.name);
        } else {
            let shared = self.clone();
            let (name, due) = (op.name.clone(), op.done_at);
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                shared.complete(&name);
            });
        }
        Ok(self.operation_now(&op.name).unwrap_or(op))
    }

    /// Apply a due operation's change (once) and record how it ended.
    pub(crate) fn complete(&self, name: &str) {
        let mut ops = lock(&self.operations);
        let due = ops
            .ops
            .get(name)
            .is_some_and(|op| op.result.is_none() && op.done_at <= Instant::now());
        if !due {
            return;
        }
        let Some((_, change)) = ops.pending.remove(name) else {
            return;
        };
        let mut state = self.state();
        let result = outcome(change(&mut state));
        drop(state);
        if let Some(op) = ops.ops.get_mut(name) {
            op.result = Some(result);
        }
    }

    fn operation_now(&self, name: &str) -> Option<SimOperation> {
        lock(&self.operations).ops.get(name).cloned()
    }

    /// The operation as it is now (completed first if it is due).
    pub(crate) fn operation(&self, scope: &Scope, name: &str) -> Option<SimOperation> {
        self.complete(name);
        lock(&self.operations).get(scope, name)
    }
}

/// A change that fails at completion ends its operation in error (the HTTP answer
/// was already given): a refusal becomes the operation's error.
fn outcome(applied: Applied) -> Option<OperationError> {
    match applied {
        Ok(result) => result,
        Err(e) => Some(OperationError {
            code: match e.status {
                412 => "CONDITION_NOT_MET",
                404 => "RESOURCE_NOT_FOUND",
                _ => "INVALID_USAGE",
            }
            .into(),
            message: e.message,
            http_status: e.status,
        }),
    }
}
