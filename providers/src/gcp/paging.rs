//! A pool listing that the list quota cut short resumes where it stopped. Compute
//! serves at most 500 addresses a page, so a pool of 1 100 costs three `addresses.list`
//! calls, all counted against one per-minute window; starting over after a refused
//! third page throws away the two pages read, which at a thousand agents was most of
//! the list quota (docs/design.md, "Why Compute's quota windows are harder").
//!
//! Only the free addresses of the earlier pages are kept. A free one is only a
//! candidate: shown free a minute ago and taken by now, it still meets the claim and the
//! cloud's own refusal before it could reach a second node. An address in use is
//! different: the agent adopts one it sees on its own instance, and a minute-old page
//! may show it there after it was detached and given to another node, which would put
//! one address on two nodes' publications. An address of ours missed this way costs a
//! swap, never a second holder.
//!
//! One client lists one query at a time, and a caller that waited for another's listing
//! takes its result ([`ListingTurn`]): the agent's listing and its sweep's start together,
//! and two listings cut short would each keep a partial one over the other's (1 000-node
//! Compute runs: one or two list calls of a window with none to spare).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as TurnLock, MutexGuard as TurnGuard};

use crate::ProviderError;

use super::client::lock;
use super::wire::Address;

/// Pages older than this are read again: past one quota window, a listing is stale
/// enough that a fresh one is worth its calls.
const RESUME_AGE: Duration = Duration::from_secs(90);

/// What the interrupted listing had read, and where it stopped.
#[derive(Debug)]
struct Partial {
    /// The region and filter it listed.
    query: String,
    items: Vec<Address>,
    next_page: String,
    at: Instant,
}

/// The one listing this client may resume.
#[derive(Debug, Default)]
pub(super) struct Resumable(Mutex<Option<Partial>>);

impl Resumable {
    /// The pages read and the token to go on with, if the last listing of `query` was
    /// cut short recently. Taken: a listing resumes once.
    pub(super) fn take(&self, query: &str) -> Option<(Vec<Address>, String)> {
        let partial = lock(&self.0).take()?;
        if partial.query != query || partial.at.elapsed() >= RESUME_AGE {
            return None;
        }
        let free = partial.items.into_iter().filter(Address::is_reserved);
        Some((free.collect(), partial.next_page))
    }

    /// Keep what a refused listing read, to resume at `next_page`.
    pub(super) fn keep(&self, query: String, items: Vec<Address>, next_page: String) {
        *lock(&self.0) = Some(Partial {
            query,
            items,
            next_page,
            at: Instant::now(),
        });
    }
}

/// The last listing that ended while another caller waited for its turn.
#[derive(Debug, Default)]
pub(super) struct LastListing {
    number: u64,
    query: String,
    result: Option<Result<Vec<Address>, ProviderError>>,
}

/// One listing at a time per client; those who waited share its result.
#[derive(Debug, Default)]
pub(super) struct ListingTurn {
    last: TurnLock<LastListing>,
    waiting: AtomicUsize,
    finished: AtomicU64,
}

/// A caller's turn: the listing of someone it waited for, or its own to make.
pub(super) enum Turn<'a> {
    Shared(Result<Vec<Address>, ProviderError>),
    Mine(TurnGuard<'a, LastListing>),
}

impl ListingTurn {
    /// Wait for the turn to list `query`; a listing of it that ended meanwhile is ours.
    pub(super) async fn wait(&self, query: &str) -> Turn<'_> {
        let seen = self.finished.load(Ordering::SeqCst);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let last = self.last.lock().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match &last.result {
            Some(result) if last.number > seen && last.query == query => {
                Turn::Shared(result.clone())
            }
            _ => Turn::Mine(last),
        }
    }

    /// The turn's listing ended: kept for those waiting (none: nothing is kept).
    pub(super) fn finish(
        &self,
        last: &mut LastListing,
        query: String,
        result: &Result<Vec<Address>, ProviderError>,
    ) {
        last.number += 1;
        last.query = query;
        last.result = (self.waiting.load(Ordering::SeqCst) > 0).then(|| result.clone());
        self.finished.store(last.number, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, status: &str) -> Address {
        Address {
            name: name.into(),
            status: status.into(),
            ..Address::default()
        }
    }

    #[test]
    fn a_listing_resumes_once_and_only_for_its_own_query() {
        let resumable = Resumable::default();
        let read = || vec![named("a", "RESERVED"), named("b", "IN_USE")];
        resumable.keep("r\nf".into(), read(), "t2".into());
        assert!(resumable.take("r\nother").is_none());
        resumable.keep("r\nf".into(), read(), "t2".into());
        let (items, token) = resumable.take("r\nf").expect("resumable");
        // Only the free address of the earlier page goes on: one in use may have moved.
        assert_eq!(items, [named("a", "RESERVED")]);
        assert_eq!(token, "t2");
        assert!(resumable.take("r\nf").is_none());
    }

    #[tokio::test]
    async fn a_caller_that_waited_for_a_listing_of_its_query_shares_it() {
        let turn = ListingTurn::default();
        let Turn::Mine(mut first) = turn.wait("r\nf").await else {
            panic!("the first caller lists");
        };
        let (shared, other, ()) = tokio::join!(turn.wait("r\nf"), turn.wait("r\nother"), async {
            tokio::task::yield_now().await;
            turn.finish(&mut first, "r\nf".into(), &Ok(vec![named("a", "RESERVED")]));
            drop(first);
        });
        match shared {
            Turn::Shared(Ok(listed)) => assert_eq!(listed, [named("a", "RESERVED")]),
            _ => panic!("the waiter of the same query shares the listing"),
        }
        assert!(
            matches!(other, Turn::Mine(_)),
            "another query lists for itself"
        );
    }
}
