//! The Dockerfile, checked without a Docker engine (CI has none): multi-stage, a
//! distroless final image running as the non-root user the DaemonSet expects, the base
//! images named once as build arguments and never by a digest nobody here could verify,
//! the image-profile binary built `--locked --no-default-features` (the agent without the
//! simulators) with the commit passed to build.rs, and `pinip --version` reporting
//! version and commit. `.ci/validate-deploy` also runs checkov's Dockerfile checks on it.

mod kustomize;

use std::process::Command;

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instruction {
    keyword: String,
    args: String,
}

fn parse(text: &str) -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending
                    .split_once(char::is_whitespace)
                    .unwrap_or((&pending, ""));
                instructions.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
                pending.clear();
            }
        }
    }
    instructions
}

fn dockerfile() -> Vec<Instruction> {
    let text =
        std::fs::read_to_string(kustomize::root().join("Dockerfile")).expect("read Dockerfile");
    parse(&text)
}

/// The build arguments declared before the first FROM, with their defaults (`${VAR}`
/// references to earlier ones resolved): what a FROM line may use.
fn global_args() -> Vec<(String, String)> {
    let mut args: Vec<(String, String)> = Vec::new();
    for instruction in dockerfile() {
        if instruction.keyword == "FROM" {
            break;
        }
        if instruction.keyword == "ARG" {
            let (name, default) = instruction
                .args
                .split_once('=')
                .unwrap_or((&instruction.args, ""));
            let value = substitute(default.trim_matches('"'), &args);
            args.push((name.to_string(), value));
        }
    }
    args
}

fn substitute(text: &str, args: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

/// The stages: (FROM arguments with the build arguments' defaults, instructions).
fn stages() -> Vec<(String, Vec<Instruction>)> {
    let args = global_args();
    let mut stages: Vec<(String, Vec<Instruction>)> = Vec::new();
    for instruction in dockerfile() {
        if instruction.keyword == "FROM" {
            stages.push((substitute(&instruction.args, &args), Vec::new()));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push(instruction);
        }
    }
    stages
}

fn find<'a>(body: &'a [Instruction], keyword: &str) -> Vec<&'a Instruction> {
    body.iter().filter(|i| i.keyword == keyword).collect()
}

#[test]
fn the_parser_reads_instructions_and_continuations() {
    let parsed = parse("# c\nFROM a AS b\nRUN x \\\n  # note\n  && y\nUSER 1:1\n");
    assert_eq!(
        parsed,
        vec![
            Instruction {
                keyword: "FROM".into(),
                args: "a AS b".into()
            },
            Instruction {
                keyword: "RUN".into(),
                args: "x  && y".into()
            },
            Instruction {
                keyword: "USER".into(),
                args: "1:1".into()
            },
        ]
    );
}

#[test]
fn a_multi_stage_build_ends_in_a_distroless_non_root_image() {
    let stages = stages();
    assert!(
        stages.len() >= 2,
        "multi-stage: a build stage and a small final one"
    );
    let (build_from, _) = &stages[0];
    assert!(
        build_from.to_lowercase().ends_with(" as build"),
        "the first stage is named build: {build_from}"
    );
    let (final_from, body) = stages.last().expect("a final stage");
    assert!(
        ["gcr.io/distroless/", "scratch", "cgr.dev/chainguard/static"]
            .iter()
            .any(|base| final_from.starts_with(base)),
        "the final image is distroless/static: {final_from}"
    );
    assert!(
        find(body, "RUN").is_empty(),
        "nothing runs in the final stage (no shell there)"
    );

    let users = find(body, "USER");
    let user = users.last().expect("the final stage sets USER");
    let (uid, gid) = user
        .args
        .split_once(':')
        .unwrap_or((&user.args, &user.args));
    let uid: u32 = uid.parse().expect("a numeric uid (runAsNonRoot needs one)");
    let gid: u32 = gid.parse().expect("a numeric gid");
    assert!(uid != 0 && gid != 0, "non-root: {}", user.args);

    // The same identity the DaemonSet asks for.
    let objects = kustomize::render("deploy/base");
    let ds = kustomize::the_one(&objects, "DaemonSet");
    let security = kustomize::container(ds)
        .pointer("/securityContext")
        .expect("securityContext");
    assert_eq!(
        security.pointer("/runAsUser").and_then(|v| v.as_u64()),
        Some(u64::from(uid))
    );
    assert_eq!(
        security.pointer("/runAsGroup").and_then(|v| v.as_u64()),
        Some(u64::from(gid))
    );

    let entrypoint = find(body, "ENTRYPOINT");
    let entrypoint = entrypoint.last().expect("an ENTRYPOINT");
    let binary: Vec<String> =
        serde_json::from_str(&entrypoint.args).expect("ENTRYPOINT in exec form");
    let copied = find(body, "COPY");
    assert!(
        copied
            .iter()
            .any(|c| c.args.starts_with("--from=build ")
                && c.args.ends_with(&format!(" {}", binary[0]))),
        "{} is copied from the build stage",
        binary[0]
    );
    let cmd = find(body, "CMD");
    assert_eq!(
        cmd.last().map(|c| c.args.as_str()),
        Some(r#"["run"]"#),
        "runs the agent by default"
    );
}

#[test]
fn the_image_binary_is_built_locked_with_the_commit_baked_in() {
    let stages = stages();
    let (_, build) = &stages[0];
    let run = find(build, "RUN")
        .into_iter()
        .find(|r| r.args.contains("cargo build"))
        .expect("the build stage runs cargo build");
    // The image profile: release, built small (the agent's resident memory is mostly its
    // own code's pages; Cargo.toml says why).
    for flag in [
        "--profile image",
        "--locked",
        "--no-default-features",
        "--bin pinip",
    ] {
        assert!(run.args.contains(flag), "cargo build {flag}: {}", run.args);
    }
    let position = |keyword: &str, needle: &str| {
        build
            .iter()
            .position(|i| i.keyword == keyword && i.args.contains(needle))
            .unwrap_or_else(|| panic!("the build stage has no {keyword} with {needle}"))
    };
    let run_at = position("RUN", "cargo build");
    assert!(position("ARG", "PINIP_COMMIT") < run_at);
    assert!(
        position("ENV", "PINIP_COMMIT=${PINIP_COMMIT}") < run_at,
        "build.rs reads PINIP_COMMIT from the environment"
    );
    let build_rs =
        std::fs::read_to_string(kustomize::root().join("build.rs")).expect("read build.rs");
    assert!(
        build_rs.contains("rerun-if-env-changed=PINIP_COMMIT")
            && build_rs.contains("rustc-env=PINIP_COMMIT=")
    );

    // The toolchain is at least the workspace's rust-version.
    let arg = dockerfile()
        .into_iter()
        .find(|i| i.keyword == "ARG" && i.args.starts_with("RUST_VERSION="))
        .expect("ARG RUST_VERSION=…");
    let version = |text: &str| -> (u32, u32) {
        let mut parts = text
            .trim()
            .trim_matches('"')
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    let manifest =
        std::fs::read_to_string(kustomize::root().join("Cargo.toml")).expect("read Cargo.toml");
    let msrv = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .expect("the workspace's rust-version");
    assert!(
        version(&arg.args["RUST_VERSION=".len()..]) >= version(msrv),
        "{} < rust-version {msrv}",
        arg.args
    );
}

#[test]
fn base_images_are_build_arguments_named_once_without_a_digest() {
    let text =
        std::fs::read_to_string(kustomize::root().join("Dockerfile")).expect("read Dockerfile");
    assert!(
        !text.contains("@sha256:") || text.lines().filter(|l| l.contains("@sha256:")).all(|l| l.trim_start().starts_with('#')),
        "no digest in the Dockerfile: nobody here could verify one (pin it in the release pipeline)"
    );
    let args = global_args();
    let froms: Vec<Instruction> = dockerfile()
        .into_iter()
        .filter(|i| i.keyword == "FROM")
        .collect();
    assert!(froms.len() >= 2);
    let mut images = Vec::new();
    for from in &froms {
        let image = from.args.split_whitespace().next().unwrap_or("");
        if image == "scratch"
            || froms.iter().any(|f| {
                f.args
                    .to_lowercase()
                    .ends_with(&format!(" as {}", image.to_lowercase()))
            })
        {
            continue; // no base image, or an earlier stage
        }
        let arg = image
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("FROM {image}: name the base image in a build argument (ARG before the first FROM)"));
        let (_, default) = args
            .iter()
            .find(|(name, _)| name == arg)
            .unwrap_or_else(|| panic!("FROM ${{{arg}}}: no ARG {arg} before the first FROM"));
        assert!(
            default.contains('/') && default.contains(':') && !default.contains('$'),
            "ARG {arg}={default}: a registry path with a tag"
        );
        images.push(default.clone());
    }
    assert_eq!(
        images.len(),
        2,
        "a build image and a runtime image: {images:?}"
    );
    // Named once: the image names appear nowhere else (comments showing how to pin them
    // by digest aside).
    for image in &images {
        let repository = image.split(':').next().unwrap_or(image);
        let mentions = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && l.contains(repository))
            .count();
        assert_eq!(
            mentions, 1,
            "{repository} is named {mentions} times outside comments"
        );
    }
}

/// The contract the image build relies on: the `simulate` feature (default on) carries
/// the simulators, so `--no-default-features` leaves them out of the agent binary.
#[test]
fn the_simulators_are_behind_the_default_simulate_feature() {
    let manifest: toml_like::Manifest = toml_like::read(&kustomize::root().join("Cargo.toml"));
    assert!(
        manifest.default_features.iter().any(|f| f == "simulate"),
        "Cargo.toml: [features] default = [\"simulate\", …]"
    );
    assert!(
        manifest
            .optional_dependencies
            .iter()
            .any(|d| d == "pinip-sim"),
        "Cargo.toml: pinip-sim is an optional dependency (enabled by `simulate`)"
    );
}

/// Just enough of Cargo.toml's syntax for the feature contract above.
mod toml_like {
    pub struct Manifest {
        pub default_features: Vec<String>,
        pub optional_dependencies: Vec<String>,
    }

    pub fn read(path: &std::path::Path) -> Manifest {
        let text = std::fs::read_to_string(path).expect("read Cargo.toml");
        let mut section = String::new();
        let mut default_features = Vec::new();
        let mut optional_dependencies = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            if section == "[features]" && line.starts_with("default") {
                default_features = line
                    .split(['[', ']', ',', '"'])
                    .map(str::trim)
                    .filter(|w| !w.is_empty() && !w.starts_with("default") && *w != "=")
                    .map(String::from)
                    .collect();
            }
            if section == "[dependencies]" && line.contains("optional = true") {
                if let Some((name, _)) = line.split_once(['=', '.']) {
                    optional_dependencies.push(name.trim().to_string());
                }
            }
        }
        Manifest {
            default_features,
            optional_dependencies,
        }
    }
}

#[test]
fn the_build_context_keeps_what_the_build_needs() {
    let ignore = std::fs::read_to_string(kustomize::root().join(".dockerignore"))
        .expect("read .dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for excluded in [".git", "target"] {
        assert!(
            patterns.contains(&excluded),
            ".dockerignore leaves {excluded} in the context"
        );
    }
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "providers",
        "sim",
        "examples",
    ] {
        assert!(
            !patterns
                .iter()
                .any(|p| *p == needed || p.trim_end_matches('/') == needed),
            ".dockerignore drops {needed}, which the build needs"
        );
        assert!(
            kustomize::root().join(needed).exists(),
            "{needed} is missing"
        );
    }
}

#[test]
fn pinip_version_reports_the_version_and_the_commit() {
    let output = Command::new(env!("CARGO_BIN_EXE_pinip"))
        .arg("--version")
        .output()
        .expect("run pinip --version");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let commit = env!("PINIP_COMMIT");
    assert_eq!(
        text.trim(),
        format!("pinip {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        commit == "unknown"
            || (commit.len() <= 12 && commit.chars().all(|c| c.is_ascii_alphanumeric())),
        "{commit:?} is an abbreviated commit or `unknown`"
    );
}
