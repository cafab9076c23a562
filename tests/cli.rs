//! `pinip` as a process: bad input is one clear line and exit code 2, before anything
//! is written anywhere.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use pinip_sim::kube::KubeSim;

fn pinip(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinip"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("pinip runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

#[test]
fn bad_settings_are_one_line_and_exit_code_2() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "NODE_NAME"),
        (
            &[("NODE_NAME", "n1"), ("RETRY_INTERVAL", "0s")],
            "RETRY_INTERVAL",
        ),
        (
            &[("NODE_NAME", "n1"), ("RETRY_INTERVAL", "-1m")],
            "RETRY_INTERVAL",
        ),
        (&[("NODE_NAME", "n1"), ("RETRY_INTERVAL", "60")], "60s"),
        (
            &[("NODE_NAME", "n1"), ("LEASE_DURATION", "0")],
            "LEASE_DURATION",
        ),
        (
            &[("NODE_NAME", "n1"), ("RETRY_ATTEMPTS", "-2")],
            "RETRY_ATTEMPTS",
        ),
        (
            &[("NODE_NAME", "n1"), ("LOG_LEVEL", "verbose")],
            "LOG_LEVEL",
        ),
        (
            &[("NODE_NAME", "n1"), ("FILTER", "Name=tag:kubeip")],
            "Name=tag:kubeip",
        ),
        (
            &[
                ("NODE_NAME", "n1"),
                ("FILTER", "Name=tag:a,Values=b;labels.c=d"),
            ],
            "mixes",
        ),
        (
            &[("NODE_NAME", "n1"), ("RELEASE_ON_EXIT", "sometimes")],
            "RELEASE_ON_EXIT",
        ),
        (&[("NODE_NAME", "n1"), ("IPV6", "maybe")], "IPV6"),
        (
            &[("NODE_NAME", "n1"), ("FILTER", "freeformTags.kubeip")],
            "freeformTags.kubeip",
        ),
        (
            &[
                ("NODE_NAME", "n1"),
                ("FILTER", "freeformTags.kubeip=reserved"),
                ("IPV6", "true"),
            ],
            "IPV6=true is not supported on OCI",
        ),
        (
            &[("NODE_NAME", "n1"), ("OCI_AUTH", "kerberos")],
            "OCI_AUTH=\"kerberos\" is not known",
        ),
        (
            &[("NODE_NAME", "n1"), ("OCI_CORE_ENDPOINT", "iaas.example")],
            "OCI_CORE_ENDPOINT",
        ),
        (
            &[
                ("NODE_NAME", "n1"),
                ("OCI_TENANCY_OCID", "ocid1.tenancy.oc1..a"),
            ],
            "OCI_PRIVATE_KEY_PATH",
        ),
    ];
    for (env, expected) in cases {
        let output = pinip(&["run"], env);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{env:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{env:?}: one line, got: {text}");
        assert!(text.contains(expected), "{env:?}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn with_log_json_even_a_setting_that_does_not_parse_is_a_json_line() {
    for env in [
        &[
            ("NODE_NAME", "n1"),
            ("LOG_JSON", "true"),
            ("RETRY_INTERVAL", "0"),
        ][..],
        &[("LOG_JSON", "true"), ("FILTER", "Name=tag:kubeip")][..],
    ] {
        let output = pinip(&["run"], env);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{text}");
        let line: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{env:?}: not JSON ({e}): {text}"));
        assert_eq!(line["level"], "ERROR", "{text}");
        assert!(
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("pinip: configuration error")),
            "{text}"
        );
    }
}

#[test]
fn kubeip_style_settings_are_accepted() {
    // Valid settings get as far as looking for a cluster; that failure is the next line.
    let output = pinip(
        &["run"],
        &[
            ("NODE_NAME", "n1"),
            (
                "FILTER",
                "Name=tag:kubeip,Values=reserved;Name=tag:environment,Values=prod",
            ),
            ("ORDER_BY", "Tag:rank desc"),
            ("RETRY_INTERVAL", "1h30m"),
            ("LOG_LEVEL", "WARNING"),
            ("RELEASE_ON_EXIT", "true"),
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
        ],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("Kubernetes API"), "{text}");
}

#[test]
fn version_and_help_exit_zero() {
    for flag in ["--version", "-v", "-V"] {
        let output = pinip(&[flag], &[]);
        assert!(output.status.success(), "{flag}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
    // KubeIP's boolean flag forms.
    let output = pinip(
        &["run", "--json=true", "--ipv6", "--develop-mode=false"],
        &[("NODE_NAME", "n1"), ("KUBECONFIG", "/nonexistent")],
    );
    assert!(
        stderr(&output).contains("Kubernetes API"),
        "{}",
        stderr(&output)
    );
    assert!(pinip(&["run", "--help"], &[]).status.success());
}

#[test]
fn simulate_refuses_impossible_sizes() {
    let output = pinip(&["simulate", "--nodes", "0"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// `pinip run` for one node with `provider_id`, as a process: it must stop with exit
/// code 2, its last line containing `expected`, having written nothing but (maybe) an Event.
async fn stops_with_exit_2_and_changes_nothing(
    provider_id: &'static str,
    env: &'static [(&'static str, &'static str)],
    expected: &'static str,
) {
    let sim = KubeSim::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!(
        "pinip-cli-{}-{}",
        std::process::id(),
        sim.addr().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    sim.add_node("the-node", Some(provider_id), BTreeMap::new(), Vec::new());
    let path = kubeconfig.to_string_lossy().to_string();
    let output = tokio::task::spawn_blocking(move || {
        // No admin server: tests run side by side, and 9090 may be taken.
        let mut vars = vec![
            ("NODE_NAME", "the-node"),
            ("KUBECONFIG", path.as_str()),
            ("ADMIN_ADDR", "off"),
        ];
        vars.extend_from_slice(env);
        pinip(&["run"], &vars)
    })
    .await
    .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.lines().last().unwrap_or_default().contains(expected),
        "{text}"
    );
    let counts = sim.request_counts();
    for verb in ["update", "patch", "delete"] {
        assert_eq!(counts.verb(verb), 0, "{verb}: {counts:?}");
    }
    // The only write is the Warning Event saying why.
    assert_eq!(counts.resource("leases"), 0, "{counts:?}");
    sim.shutdown();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_an_unsupported_cloud_stops_with_exit_2_and_changes_nothing() {
    stops_with_exit_2_and_changes_nothing(
        "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1",
        &[],
        "providerID",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oke_node_with_ipv6_or_without_credentials_stops_with_exit_2_and_changes_nothing() {
    let oke = "ocid1.instance.oc1.phx.anyhqljtexample";
    stops_with_exit_2_and_changes_nothing(
        oke,
        &[("IPV6", "true")],
        "IPV6=true is not supported on OCI",
    )
    .await;
    stops_with_exit_2_and_changes_nothing(
        oke,
        &[("OCI_CONFIG_FILE", "/nonexistent/oci/config")],
        "OCI_CONFIG_FILE",
    )
    .await;
    stops_with_exit_2_and_changes_nothing("ocid1.vnic.oc1.phx.abc", &[], "not of an instance")
        .await;
}
