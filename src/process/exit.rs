//! How a command says that its configuration is wrong: one line on stderr, exit code 2.

use std::process::ExitCode;

use crate::process::logging::json_lines;

/// Exit code for configuration errors (and clap's own usage errors).
pub const EXIT_CONFIG: u8 = 2;

/// One line on stderr and exit code 2. With `LOG_JSON=true` the line is a JSON object
/// like every other line the process writes, so log pipelines can parse it.
pub fn config_error(message: &str) -> ExitCode {
    eprintln!("{}", config_error_line(message, json_lines()));
    ExitCode::from(EXIT_CONFIG)
}

/// The text of that line (pure, for tests).
pub fn config_error_line(message: &str, json: bool) -> String {
    // One line, whatever the cause's own text looks like (a YAML parser's error spans
    // several lines with a caret).
    let flat: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let text = format!("pinip: configuration error: {}", flat.join(" "));
    if json {
        serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "target": "pinip",
            "message": text,
        })
        .to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_follows_the_log_format() {
        assert_eq!(
            config_error_line("FILTER is bad", false),
            "pinip: configuration error: FILTER is bad"
        );
        let json: serde_json::Value =
            serde_json::from_str(&config_error_line("FILTER is bad", true)).unwrap();
        assert_eq!(json["level"], "ERROR");
        assert_eq!(json["message"], "pinip: configuration error: FILTER is bad");
    }

    #[test]
    fn a_cause_of_several_lines_becomes_one() {
        assert_eq!(
            config_error_line("bad YAML:\n  line 1\n   ^\n", false),
            "pinip: configuration error: bad YAML: line 1 ^"
        );
    }
}
