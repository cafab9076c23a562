//! Session tokens (the JWT the auth service returns for instance principals) and when to
//! renew one. Pure: the signature of the token is the service's business (the SDKs do
//! not verify it either); pinip reads `exp` and `iat` to renew in time.
//!
//! A token is renewed once less than a margin of its lifetime is left: a minute (the
//! Python SDK's jitter), or half the lifetime for tokens shorter than two minutes. A
//! token just fetched is never renewed again within [`MIN_REFRESH_INTERVAL`] (a clock far
//! off the service's would otherwise renew on every call): a 401 renews it instead.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Renewing more often than this, unless the service refused the token, is a loop.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// The most of a token's lifetime left unused.
const MAX_MARGIN_SECONDS: i64 = 60;

#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken {
    pub raw: String,
    /// `exp`, Unix seconds.
    pub expires: i64,
    /// `iat`, Unix seconds, when the token has one.
    pub issued: Option<i64>,
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionToken")
            .field("expires", &self.expires)
            .field("issued", &self.issued)
            .finish_non_exhaustive()
    }
}

/// Read `exp` (required) and `iat` from a JWT's payload.
pub fn parse(raw: &str) -> Result<SessionToken, String> {
    let raw = raw.trim();
    let mut parts = raw.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return Err("the token is not a JWT (three dot-separated parts)".into()),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("the token's payload is not base64url: {e}"))?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the token's payload is not JSON: {e}"))?;
    let number = |k: &str| claims.get(k).and_then(serde_json::Value::as_f64);
    let expires = number("exp").ok_or("the token has no exp")? as i64;
    Ok(SessionToken {
        raw: raw.to_string(),
        expires,
        issued: number("iat").map(|i| i as i64),
    })
}

/// Seconds before `exp` at which the token is renewed.
pub fn margin(token: &SessionToken) -> i64 {
    let lifetime = token
        .issued
        .map(|i| token.expires - i)
        .filter(|l| *l > 0)
        .unwrap_or(2 * MAX_MARGIN_SECONDS);
    (lifetime / 2).min(MAX_MARGIN_SECONDS)
}

/// Whether to fetch a new token before the next call: it is within its margin of
/// expiring (at `now`, Unix seconds), and was not fetched just now (`age`).
pub fn refresh_due(token: &SessionToken, now: i64, age: Duration) -> bool {
    now >= token.expires - margin(token) && age >= MIN_REFRESH_INTERVAL
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"asw"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{head}.{body}.c2ln")
    }

    #[test]
    fn exp_and_iat_are_read() {
        let t = parse(&jwt(
            serde_json::json!({"exp": 1_700_001_200, "iat": 1_700_000_000, "sub": "x"}),
        ))
        .unwrap();
        assert_eq!((t.expires, t.issued), (1_700_001_200, Some(1_700_000_000)));
        assert!(
            !format!("{t:?}").contains(&t.raw),
            "the token is not logged"
        );
        let padded = format!(
            "{}==",
            jwt(serde_json::json!({"exp": 5}))
                .rsplit_once('.')
                .unwrap()
                .0
        );
        assert!(parse(&format!("{padded}.sig")).is_ok());
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "a.!!!.c",
            &jwt(serde_json::json!({"iat": 1})),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renewal_comes_a_minute_before_expiry_or_halfway_for_short_tokens() {
        let long = SessionToken {
            raw: String::new(),
            expires: 2_000,
            issued: Some(800),
        };
        assert_eq!(margin(&long), 60);
        let settled = Duration::from_secs(600);
        assert!(!refresh_due(&long, 1_939, settled));
        assert!(refresh_due(&long, 1_940, settled));
        assert!(refresh_due(&long, 5_000, settled), "expired");
        let short = SessionToken {
            raw: String::new(),
            expires: 1_030,
            issued: Some(1_000),
        };
        assert_eq!(margin(&short), 15);
        assert!(!refresh_due(&short, 1_014, settled));
        assert!(refresh_due(&short, 1_015, settled));
        let no_iat = SessionToken {
            issued: None,
            ..long.clone()
        };
        assert_eq!(margin(&no_iat), 60);
    }

    #[test]
    fn a_token_just_fetched_is_not_renewed_again_whatever_the_clock_says() {
        // A clock an hour ahead of the service's: every token looks expired on arrival.
        let token = SessionToken {
            raw: String::new(),
            expires: 1_000,
            issued: Some(0),
        };
        assert!(!refresh_due(&token, 4_600, Duration::from_secs(1)));
        assert!(refresh_due(&token, 4_600, MIN_REFRESH_INTERVAL));
    }
}
