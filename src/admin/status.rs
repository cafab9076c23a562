//! Where an agent stands, published on a watch channel: readiness, `pinip simulate`'s
//! progress and the examples read it.

use std::net::IpAddr;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentStatus {
    Starting,
    /// Waiting for the Node object or its providerID.
    WaitingForNode(String),
    Acquiring,
    /// The address is attached and published. `elapsed`: from agent start.
    Assigned {
        address: IpAddr,
        adopted: bool,
        elapsed: Duration,
    },
    /// No free address in the pool; the agent keeps waiting (and said so in an Event).
    PoolExhausted {
        matched: usize,
        free: usize,
    },
    /// RETRY_ATTEMPTS attempts in a row failed; the agent keeps trying, more slowly.
    Stalled(String),
    Releasing,
    Stopped {
        released: Option<IpAddr>,
    },
}

impl AgentStatus {
    pub fn is_ready(&self) -> bool {
        matches!(self, AgentStatus::Assigned { .. })
    }
}
