//! `simulate --serve`: the playground as a cluster presents itself to its clients. The
//! API server answers over HTTPS (kubectl sends bearer tokens only over TLS) and
//! authenticates and authorizes every request: a token nobody issued gets 401, none at
//! all 403 as `system:anonymous`, and `deploy/base`'s RBAC is loaded, so the printed
//! agent kubeconfig (the `pinip` ServiceAccount's token) can do exactly what a deployed
//! agent can (`kubectl auth can-i --list`, `pinip run`).

use std::path::PathBuf;

use anyhow::Context;
use pinip_sim::kube::{Rbac, UserInfo, DEFAULT_TOKEN};
use serde_json::Value;

use super::world::SimulatedWorld;

/// `deploy/base`'s ServiceAccount and RBAC, as the image's DaemonSet is granted them.
const DEPLOY_RBAC: &str = include_str!("../../deploy/base/rbac.yaml");
const DEPLOY_SERVICE_ACCOUNT: &str = include_str!("../../deploy/base/serviceaccount.yaml");

/// What `--serve` prints for other clients.
pub(super) struct Served {
    /// The HTTPS URL.
    pub url: String,
    /// A cluster admin's kubeconfig (HTTPS, the CA, a bearer token).
    pub admin_kubeconfig: PathBuf,
    /// The `pinip` ServiceAccount's kubeconfig, under `deploy/base`'s RBAC.
    pub agent_kubeconfig: PathBuf,
}

/// Opens the HTTPS endpoint, turns authentication and RBAC on, and writes both
/// kubeconfigs next to the world's own (the admin one replaces it).
pub(super) async fn open(world: &SimulatedWorld) -> anyhow::Result<Served> {
    let tls = world.kube.serve_tls().await?;
    let objects = deploy_objects()?;
    let mut policy = Rbac::from_objects(&objects).context("deploy/base's RBAC")?;
    let (namespace, name) = service_account(&objects)?;
    let agent_token = format!("{DEFAULT_TOKEN}-serviceaccount-{namespace}-{name}");
    policy.add_token(&agent_token, UserInfo::service_account(&namespace, &name));
    world.kube.enforce_rbac(policy);

    let admin_kubeconfig = world.kubeconfig_path().to_path_buf();
    world
        .kube
        .write_tls_kubeconfig(&admin_kubeconfig, &tls, DEFAULT_TOKEN)?;
    let agent_kubeconfig = admin_kubeconfig.with_file_name(format!("kubeconfig-{name}"));
    world
        .kube
        .write_tls_kubeconfig(&agent_kubeconfig, &tls, &agent_token)?;
    Ok(Served {
        url: tls.url,
        admin_kubeconfig,
        agent_kubeconfig,
    })
}

fn deploy_objects() -> anyhow::Result<Vec<Value>> {
    let mut objects: Vec<Value> =
        serde_saphyr::from_multiple(DEPLOY_RBAC).context("deploy/base/rbac.yaml")?;
    let accounts: Vec<Value> = serde_saphyr::from_multiple(DEPLOY_SERVICE_ACCOUNT)
        .context("deploy/base/serviceaccount.yaml")?;
    objects.extend(accounts);
    objects.retain(|o| !o.is_null());
    Ok(objects)
}

/// The namespace and name of the one ServiceAccount of `deploy/base`.
fn service_account(objects: &[Value]) -> anyhow::Result<(String, String)> {
    let account = objects
        .iter()
        .find(|o| o.get("kind").and_then(Value::as_str) == Some("ServiceAccount"))
        .context("deploy/base has no ServiceAccount")?;
    let field = |pointer: &str| {
        account
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("deploy/base's ServiceAccount has no {pointer}"))
    };
    Ok((field("/metadata/namespace")?, field("/metadata/name")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_base_parses_into_a_policy_for_its_service_account() {
        let objects = deploy_objects().expect("deploy/base parses");
        let (namespace, name) = service_account(&objects).expect("one ServiceAccount");
        assert_eq!(
            (namespace.as_str(), name.as_str()),
            ("pinip-system", "pinip")
        );
        let kinds: Vec<&str> = objects
            .iter()
            .filter_map(|o| o.get("kind").and_then(Value::as_str))
            .collect();
        for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }
        assert!(Rbac::from_objects(&objects).is_ok());
    }
}
