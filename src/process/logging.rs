//! Log setup: `LOG_LEVEL` with KubeIP's names and the usual aliases (KubeIP silently
//! turned `warn` into another level), `LOG_JSON` for one JSON object per line.

use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" | "" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            // KubeIP's fatal and panic levels: pinip has no such levels, errors are the closest.
            "error" | "fatal" | "panic" => Ok(LogLevel::Error),
            other => Err(format!(
                "LOG_LEVEL={other:?} is unknown; use one of trace, debug, info, warn, error"
            )),
        }
    }
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Whether `init` chose JSON lines: lines written outside tracing (the one-line
/// configuration error) follow the same format.
static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// True once `init` installed JSON output.
pub fn json_lines() -> bool {
    JSON_LINES.load(Ordering::Relaxed)
}

/// The filter: `RUST_LOG` when set (an operator's explicit per-crate choice), else
/// `LOG_LEVEL` for our own crates with dependencies one notch quieter.
pub fn filter(level: LogLevel, rust_log: Option<&str>) -> EnvFilter {
    if let Some(directives) = rust_log.map(str::trim).filter(|d| !d.is_empty()) {
        if let Ok(filter) = EnvFilter::try_new(directives) {
            return filter;
        }
    }
    let deps = match level {
        LogLevel::Trace => "debug",
        LogLevel::Debug | LogLevel::Info => "warn",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    EnvFilter::new(format!(
        "{deps},pinip={lvl},pinip_providers={lvl},pinip_sim={lvl}",
        lvl = level.directive()
    ))
}

/// Install the global subscriber; logs go to stderr so stdout stays for command output.
pub fn init(level: LogLevel, json: bool, dev_mode: bool) {
    JSON_LINES.store(json, Ordering::Relaxed);
    let filter = filter(level, std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else if dev_mode {
        builder
            .pretty()
            .with_file(true)
            .with_line_number(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // A subscriber may already be installed (tests, simulate); that one wins.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubeip_names_and_aliases_case_insensitively() {
        for (text, level) in [
            ("debug", LogLevel::Debug),
            ("DEBUG", LogLevel::Debug),
            ("Info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("WARNING", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("FATAL", LogLevel::Error),
            ("panic", LogLevel::Error),
            ("trace", LogLevel::Trace),
        ] {
            assert_eq!(text.parse::<LogLevel>(), Ok(level), "{text}");
        }
        assert!("verbose"
            .parse::<LogLevel>()
            .unwrap_err()
            .contains("LOG_LEVEL"));
    }

    #[test]
    fn rust_log_wins_when_set_and_valid() {
        let set = filter(LogLevel::Info, Some("pinip=trace,kube=debug")).to_string();
        assert!(
            set.contains("pinip=trace") && set.contains("kube=debug"),
            "{set}"
        );
        let unset = filter(LogLevel::Debug, None).to_string();
        assert!(unset.contains("pinip=debug"), "{unset}");
        let blank = filter(LogLevel::Warn, Some("  ")).to_string();
        assert!(blank.contains("pinip=warn"), "{blank}");
    }
}
