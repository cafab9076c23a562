//! Building the EC2 client: from the standard AWS environment for `pinip run`, or for a
//! fixed endpoint with static credentials (the simulator, moto, tests).

use std::time::Duration;

use aws_sdk_ec2::config::retry::{ClassifyRetry, RetryAction, RetryConfig};
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_ec2::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;

/// Attempts per call inside the SDK (its standard mode: jittered backoff, a retry
/// quota). The agent's own backoff comes on top, between passes.
pub const SDK_MAX_ATTEMPTS: u32 = 3;

/// rustls on ring (the crypto kube already uses); plain `http://` endpoints work too.
fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(50))
        .build()
}

/// The client `pinip run` uses: credentials from the default chain (environment,
/// IRSA web identity, EKS Pod Identity, profile, IMDS), `region` if given (else the
/// chain's `AWS_REGION`), and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_EC2` if set.
pub async fn client_from_environment(region: Option<String>) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
        .timeout_config(timeouts());
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    let config = aws_sdk_ec2::config::Builder::from(&loader.load().await)
        .retry_classifier(ThrottlingIsPaced)
        .build();
    Client::from_conf(config)
}

/// The SDK does not retry a throttled call (EC2 answers `RequestLimitExceeded` and
/// `Unavailable` with HTTP 503): the agent paces itself among the agents that share
/// the account's buckets (`domain::pacing`), and an SDK retry a second later would
/// spend a refused call for nothing. Other transient errors keep the SDK's retries.
#[derive(Debug)]
struct ThrottlingIsPaced;

impl ClassifyRetry for ThrottlingIsPaced {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response().map(|r| r.status().as_u16()) {
            Some(503) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "pinip: throttling is paced by the agent"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// A client for `endpoint` with static test credentials, signing for `region`.
/// `max_attempts = 1` leaves every retry to the agent, so counters stay exact.
pub fn client_for_endpoint(endpoint: &str, region: &str, max_attempts: u32) -> Client {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "pinip-test",
            "pinip-test-secret",
            None,
            None,
            "pinip-static",
        ))
        .http_client(http_client())
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts.max(1)))
        .retry_classifier(ThrottlingIsPaced)
        .timeout_config(timeouts())
        .build();
    Client::from_conf(config)
}
