//! Who the agent serves: GET the Node until it exists and carries a providerID (new
//! nodes get it from the cloud controller a little after registering).

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use pinip_providers::InstanceRef;
use tokio_util::sync::CancellationToken;

use super::report::{humanize, Outcome};
use super::{explain_forbidden, sleep_or_shutdown, Agent, AgentError};
use crate::cluster::errors::is_forbidden;
use crate::domain::identity::{parse_provider_id, ProviderIdError};
use crate::domain::retry::Backoff;

impl Agent {
    /// The Node and its instance; None: shutdown while waiting.
    pub(super) async fn wait_for_identity(
        &self,
        nodes: &Api<Node>,
        shutdown: &CancellationToken,
    ) -> Result<Option<(Node, InstanceRef)>, AgentError> {
        let name = &self.settings.node.name;
        let mut delays = Backoff::node_lookup(&self.settings.retry).delays();
        loop {
            let why = match nodes.get_opt(name).await {
                Ok(Some(node)) => {
                    self.kube_answered();
                    let provider_id = node
                        .spec
                        .as_ref()
                        .and_then(|s| s.provider_id.clone())
                        .unwrap_or_default();
                    match parse_provider_id(&provider_id) {
                        Ok(instance) => return Ok(Some((node, instance))),
                        Err(ProviderIdError::Missing) => {
                            format!("node {name} has no spec.providerID yet (the cloud controller sets it once the instance is registered)")
                        }
                        Err(e) => {
                            let error = e.to_string();
                            let notifier = self.notifier(&node);
                            let unsupported = Outcome::UnsupportedNode { error: &error };
                            self.report.report(Some(&notifier), unsupported).await;
                            return Err(AgentError::Config(error));
                        }
                    }
                }
                Ok(None) => format!("node {name} does not exist (yet)"),
                Err(e) if is_forbidden(&e) && self.denial_persists(&e) => {
                    return Err(explain_forbidden(&e))
                }
                Err(e) if is_forbidden(&e) => format!(
                    "not allowed to read node {name}: {e}; retrying (an API server that has just started denies for a moment; a denial that lasts {} stops the agent)",
                    humanize(self.settings.permission_grace)
                ),
                Err(e) => format!("could not read node {name}: {e}"),
            };
            let retry_in = delays.next().unwrap_or(self.settings.retry.interval);
            let waiting = Outcome::WaitingForNode {
                why: &why,
                retry_in,
            };
            self.report.report(None, waiting).await;
            if !sleep_or_shutdown(retry_in, shutdown).await {
                return Ok(None);
            }
        }
    }
}
