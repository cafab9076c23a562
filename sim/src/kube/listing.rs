//! What a list asks the store for, and what it gets: the store narrows a list (one
//! name, a limit) before it copies anything, so a selective list of a big kind costs
//! what it returns.

use serde_json::Value;

/// What narrows a list before anything is copied.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListQuery<'a> {
    /// The one name the list asks for (a `metadata.name=` field selector).
    pub only: Option<&'a str>,
    /// At most this many (0: no limit).
    pub limit: usize,
}

/// What [`Store::list_matching`] found.
pub struct Listed {
    pub objects: Vec<Value>,
    /// Matching objects beyond the limit.
    pub remaining: usize,
    /// The version the list is consistent with.
    pub rv: u64,
}
