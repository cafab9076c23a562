//! Every read-only `kubectl get` command in the README and docs/ runs against the
//! simulated API server (which refuses what a real one refuses: a field selector a
//! kind does not support, say) on a world where agents have done their work. A doc
//! command that fails on a real cluster fails here.

use std::path::Path;
use std::time::Duration;

use pinip::admin::status::AgentStatus;
use pinip::simulate::{SimulatedWorld, WorldSpec};
use pinip_providers::IpFamily;

mod kit;
#[path = "../sim/tests/kubectl_support/mod.rs"]
mod kubectl_support;

const KIT: kit::Kit = kit::Kit {
    wait: Duration::from_secs(40),
    retry: Duration::from_millis(400),
    lease: Duration::from_secs(1),
};

/// Every `kubectl get …` in the Markdown files, as written (inline code or a line of a
/// code block), comments and shell prompts cut off.
fn doc_commands(root: &Path) -> Vec<(String, String)> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable doc");
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        // Lines of fenced code blocks; the prose between them holds inline code spans,
        // which may wrap across lines.
        let mut candidates: Vec<String> = Vec::new();
        let mut prose = String::new();
        let mut fenced = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if fenced {
                candidates.push(line.trim().to_string());
            } else {
                prose.push_str(line);
                prose.push(' ');
            }
        }
        candidates.extend(prose.split('`').skip(1).step_by(2).map(str::to_string));
        for c in candidates {
            let c = c.split(" #").next().unwrap_or_default();
            let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
            let c = c.trim_start_matches("$ ").to_string();
            if c.starts_with("kubectl get ") && !found.iter().any(|(_, x)| *x == c) {
                found.push((name.clone(), c));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kubectl_get_in_the_docs_works_against_the_simulated_api_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let commands = doc_commands(root);
    assert!(
        commands.iter().any(|(_, c)| c.contains("--field-selector")),
        "the docs' kubectl commands were found: {commands:?}"
    );

    // Two nodes hold addresses, one waits: every kind of Event the docs look for exists.
    let world = SimulatedWorld::start(WorldSpec {
        nodes: 3,
        pool: 2,
        family: IpFamily::V4,
        cloud_latency: Duration::ZERO,
        seed: 31,
    })
    .await
    .expect("world");
    let mut agents = Vec::new();
    for node in world.nodes.clone() {
        agents.push(
            world
                .spawn_agent(KIT.settings(&world, &node.name))
                .await
                .expect("agent"),
        );
    }
    for agent in &mut agents {
        KIT.status(agent, "assigned or waiting", |s| {
            s.is_ready() || matches!(s, AgentStatus::PoolExhausted { .. })
        })
        .await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kubectl = kubectl_support::kubectl(&world.kube, dir.path(), None).expect("kubeconfig");
    let node = world.nodes[0].name.clone();
    let mut failures = Vec::new();
    for (file, command) in &commands {
        let line = command.replace("<node>", &node);
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = kubectl.run(&args).await.expect("kubectl runs");
        if !out.status.success() {
            let (_, stderr) = kubectl_support::texts(&out);
            failures.push(format!("{file}: `{command}`: {}", stderr.trim()));
        }
    }
    assert!(
        failures.is_empty(),
        "doc commands that fail:\n{}",
        failures.join("\n")
    );

    // The refusal the docs warn about is real here too.
    let refused = kubectl
        .fails(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            &format!("regarding.name={node}"),
        ])
        .await
        .expect("kubectl runs");
    assert!(refused.contains("field label not supported"), "{refused}");
    for agent in agents {
        agent.stop().await.expect("stops");
    }
    world.shutdown();
}
