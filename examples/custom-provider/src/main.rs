//! `pinip-nimbus`: pinip's own command line with the Nimbus provider compiled in.
//!
//! - `pinip-nimbus demo`: everything on 127.0.0.1 (see `demo.rs`); exits non-zero on any
//!   surprise. CI runs it.
//! - `pinip-nimbus run …` (and `status`): exactly like `pinip`, serving `nimbus://` nodes
//!   through `NIMBUS_ENDPOINT` with the bearer token `NIMBUS_TOKEN`, and AWS/GCP nodes
//!   through pinip's own providers.

use std::process::ExitCode;
use std::sync::Arc;

use pinip_example_custom_provider::demo;
use pinip_example_custom_provider::provider::NimbusProviders;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("demo") {
        return demo::main().await;
    }
    pinip::cli::main_with(Arc::new(NimbusProviders::from_env())).await
}
