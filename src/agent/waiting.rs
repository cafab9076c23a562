//! What a waiting node says on itself: why it waits (`pinip.dev/waiting`), and after
//! TAINT_GIVE_UP the taint lifted so the node can run workloads without an address.

use tracing::{debug, warn};

use super::report::{humanize, Outcome};
use super::{Agent, NodeContext};

impl Agent {
    /// Write why the node waits on its Node, once per change of `kind`; best effort.
    pub(super) async fn show_waiting(
        &self,
        ctx: &NodeContext,
        shown: &mut Option<&'static str>,
        kind: &'static str,
        why: &str,
    ) {
        if *shown == Some(kind) {
            return;
        }
        match ctx.publisher.publish_waiting(why).await {
            Ok(()) => *shown = Some(kind),
            Err(e) => {
                debug!(error = %e, "could not say on the Node why it waits; trying again later")
            }
        }
    }

    /// TAINT_GIVE_UP (KubeIP issue #156): when no address could be had for that long,
    /// lift the taint and label the node `pinip.dev/assigned=false`, so a mixed pool keeps
    /// scheduling. The agent keeps trying; a later assignment relabels the node.
    pub(super) async fn maybe_give_up_taint(&self, ctx: &NodeContext, done: &mut bool) {
        let taint = &self.settings.taint;
        let (Some(key), Some(after)) = (&taint.key, taint.give_up) else {
            return;
        };
        if *done || self.report.elapsed() < after {
            return;
        }
        *done = true;
        let lifted = match ctx.publisher.remove_taint(key).await {
            Ok(lifted) => lifted,
            Err(e) => {
                warn!(error = %e, taint = %key, "could not lift the taint after TAINT_GIVE_UP");
                return;
            }
        };
        if let Err(e) = ctx.publisher.mark_unassigned().await {
            warn!(error = %e, "could not label the node as without an address");
        }
        if lifted {
            let note = format!("no address after {}; removed taint {key} so the node can run workloads without a static address (label pinip.dev/assigned=false)", humanize(after));
            let outcome = Outcome::TaintLiftedWithoutAddress { note };
            self.report.report(Some(&ctx.notifier), outcome).await;
        }
    }
}
