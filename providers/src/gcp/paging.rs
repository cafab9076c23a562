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
//! The pages read before the refusal are also given to the caller ([`Pages::refused`]):
//! a node may take a free address from them rather than wait for the window to turn
//! (`Provider::list_pool_prefix`). An attach forgets the kept pages, which show its
//! address free.
//!
//! A caller that lists a query while a listing of it is in flight joins that listing
//! ([`InFlight`]): the agent's listing and its sweep's start together, and two listings
//! cut short would each keep a partial one over the other's (1 000-node Compute runs:
//! one or two list calls of a window with none to spare).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};

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

    /// Forget a kept listing: an attach changed what its pages said.
    pub(super) fn forget(&self) {
        lock(&self.0).take();
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

/// What one listing read: every page, or the pages before the list quota refused the
/// next one (`refused`), kept to resume from.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pages {
    pub items: Vec<Address>,
    pub refused: Option<ProviderError>,
}

/// One listing's pages, read on behalf of every caller that joins it.
pub(super) type ListingFuture = BoxFuture<'static, Result<Pages, ProviderError>>;
type Listing = Shared<ListingFuture>;

/// Callers that list a query while a listing of it is in flight join that listing. Only
/// its callers keep it alive: one they all gave up (a pass that timed out) ends with
/// them, as an unshared listing would.
#[derive(Default)]
pub(super) struct InFlight(Mutex<Option<(String, WeakShared<ListingFuture>)>>);

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = lock(&self.0).as_ref().map(|(query, _)| query.clone());
        f.debug_tuple("InFlight").field(&running).finish()
    }
}

impl InFlight {
    /// The listing of `query` in flight, or a new one made by `start`.
    pub(super) fn join_or_start(
        &self,
        query: &str,
        start: impl FnOnce() -> ListingFuture,
    ) -> Listing {
        let mut slot = lock(&self.0);
        let running = slot
            .as_ref()
            .filter(|(running, _)| running == query)
            .and_then(|(_, listing)| listing.upgrade())
            .filter(|listing| listing.peek().is_none());
        if let Some(listing) = running {
            return listing;
        }
        let listing = start().shared();
        *slot = listing.downgrade().map(|weak| (query.to_string(), weak));
        listing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(items: Vec<Address>) -> Pages {
        Pages {
            items,
            refused: None,
        }
    }

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
        let in_flight = InFlight::default();
        let started = std::sync::atomic::AtomicU32::new(0);
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let listing = move || -> ListingFuture {
            async move {
                let _ = held.await;
                Ok(whole(vec![named("a", "RESERVED")]))
            }
            .boxed()
        };
        let first = in_flight.join_or_start("r\nf", || {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            listing()
        });
        let joined =
            in_flight.join_or_start("r\nf", || unreachable!("joins the listing in flight"));
        let other = in_flight.join_or_start("r\nother", || {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok(whole(Vec::new())) }.boxed()
        });
        let _ = release.send(());
        let (first, shared) = tokio::join!(first, joined);
        assert_eq!(
            shared,
            Ok(whole(vec![named("a", "RESERVED")])),
            "the waiter of the same query shares the listing"
        );
        assert_eq!(first, shared);
        assert_eq!(
            other.await,
            Ok(whole(Vec::new())),
            "another query lists for itself"
        );
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_listing_every_caller_gave_up_is_not_joined() {
        let in_flight = InFlight::default();
        let abandoned = in_flight.join_or_start("r\nf", || futures::future::pending().boxed());
        drop(abandoned);
        let fresh = in_flight.join_or_start("r\nf", || async { Ok(whole(Vec::new())) }.boxed());
        assert_eq!(fresh.await, Ok(whole(Vec::new())));
    }
}
