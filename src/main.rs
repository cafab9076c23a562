use std::process::ExitCode;
use std::sync::Arc;

use pinip::cloud::factory::CloudProviders;

#[tokio::main]
async fn main() -> ExitCode {
    pinip::cli::main_with(Arc::new(CloudProviders)).await
}
