//! Runs the Kubernetes API simulator with two nodes until Ctrl-C, for trying
//! it with kubectl:
//!
//! ```text
//! cargo run -p pinip-sim --example kube_sim -- /tmp/sim.kubeconfig
//! kubectl --kubeconfig /tmp/sim.kubeconfig get nodes
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use pinip_sim::kube::KubeSim;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("pinip-sim.kubeconfig"));
    let sim = KubeSim::start().await?;
    sim.add_node("node-a", Some("fake://node-a"), BTreeMap::new(), vec![]);
    sim.add_node("node-b", Some("fake://node-b"), BTreeMap::new(), vec![]);
    sim.write_kubeconfig(&path)?;
    println!(
        "serving {} ; kubeconfig written to {}",
        sim.url(),
        path.display()
    );
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
