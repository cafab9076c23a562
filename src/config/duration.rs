//! Go-style durations (`1m`, `30s`, `1h30m`, `1.5h`, `500ms`): the format KubeIP's
//! `RETRY_INTERVAL` takes, so existing manifests keep working unchanged.

use std::time::Duration;

/// Parse a Go duration. Unlike Go, negative values and zero are refused here: every
/// duration pinip takes is a wait, and KubeIP panics on zero.
pub fn parse_go_duration(input: &str) -> Result<Duration, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("it is empty; write e.g. 30s, 1m or 1h30m".into());
    }
    if text.starts_with('-') {
        return Err(format!(
            "{text:?} is negative; write a positive duration such as 30s"
        ));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.chars().all(|c| c.is_ascii_digit()) {
        // Never suggest a value that is then refused: "0s" is zero too.
        if text.chars().all(|c| c == '0') {
            return Err(format!(
                "{text:?} is zero; it must be greater than zero, with a unit (e.g. 30s, 1m)"
            ));
        }
        return Err(format!(
            "{text:?} has no unit; write {text}s for seconds (units: ms, s, m, h)"
        ));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration: expected a number at {rest:?}"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{text:?} is missing a unit after {number}")),
            other => {
                return Err(format!(
                    "{text:?} has an unknown unit {other:?} (use ms, s, m or h)"
                ))
            }
        };
        total += value * seconds_per_unit;
        rest = next;
    }
    if !total.is_finite() || total > 365.0 * 24.0 * 3600.0 {
        return Err(format!("{text:?} is too long"));
    }
    let duration = Duration::from_secs_f64(total);
    if duration.is_zero() {
        return Err(format!("{text:?} is zero; it must be greater than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_go_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration(" 2m10s "), Ok(Duration::from_secs(130)));
    }

    #[test]
    fn refuses_zero_negative_unitless_and_garbage() {
        for bad in [
            "", "0", "0s", "-1m", "60", "1x", "m", "1m-", "1..5s", "9999999h",
        ] {
            let err = parse_go_duration(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(parse_go_duration("60").unwrap_err().contains("60s"));
    }

    #[test]
    fn no_hint_suggests_a_value_that_is_then_refused() {
        for bad in ["0", "00", "60", "-1m", "", "1x"] {
            let err = parse_go_duration(bad).unwrap_err();
            for word in err
                .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')' || c == ';')
            {
                let word = word.trim_matches(|c: char| c == '"' || c == '.');
                if word.starts_with(|c: char| c.is_ascii_digit()) && word.ends_with(['s', 'm', 'h'])
                {
                    assert!(
                        parse_go_duration(word).is_ok(),
                        "{bad}: the hint {word} is refused: {err}"
                    );
                }
            }
        }
    }
}
