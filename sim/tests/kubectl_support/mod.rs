//! kubectl as the simulator's independent client, shared by the kubectl conformance
//! tests: one binary (`KUBECTL`, else kubectl on PATH), isolated from ~/.kube.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use pinip_sim::kube::KubeSim;

pub fn kubectl_binary() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// kubectl against one kubeconfig, isolated from the user's ~/.kube.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub home: PathBuf,
}

impl Kubectl {
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = tokio::process::Command::new(kubectl_binary());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .arg("--request-timeout=20s")
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        match cmd.output().await {
            Ok(out) => Ok(out),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "kubectl not found ({}): install kubectl (CI installs it) or set KUBECTL to its path",
                kubectl_binary()
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Success required; stdout and stderr.
    pub async fn ok(&self, args: &[&str]) -> anyhow::Result<(String, String)> {
        let out = self.run(args).await?;
        let (stdout, stderr) = texts(&out);
        anyhow::ensure!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        Ok((stdout, stderr))
    }

    /// Success required; stdout.
    pub async fn stdout(&self, args: &[&str]) -> anyhow::Result<String> {
        Ok(self.ok(args).await?.0)
    }

    /// Failure required; stderr.
    pub async fn fails(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        let (stdout, stderr) = texts(&out);
        anyhow::ensure!(
            !out.status.success(),
            "kubectl {args:?} succeeded:\nstdout: {stdout}\nstderr: {stderr}"
        );
        Ok(stderr)
    }
}

pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn kubectl(sim: &KubeSim, dir: &Path, token: Option<&str>) -> anyhow::Result<Kubectl> {
    let kubeconfig = dir.join(format!("kubeconfig-{}", token.unwrap_or("default")));
    match token {
        Some(t) => sim.write_kubeconfig_with_token(&kubeconfig, t)?,
        None => sim.write_kubeconfig(&kubeconfig)?,
    }
    Ok(Kubectl {
        kubeconfig,
        home: dir.to_path_buf(),
    })
}

pub fn write(dir: &Path, name: &str, contents: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(path.to_string_lossy().into_owned())
}
