//! What signs the provider's calls: a fixed key (an API key, or a session token from a
//! config file), or a principal (instance principals, workload identity), whose key
//! changes with every token.

use std::sync::Arc;

use super::principal::Principal;
use super::signer::SigningKey;
use crate::ProviderError;

#[derive(Clone, Debug)]
pub enum Credentials {
    /// An API key (`<tenancy>/<user>/<fingerprint>`) or a config file's session token.
    Key(SigningKey),
    /// `OCI_AUTH=instance_principal` or `workload_identity`.
    Principal(Arc<Principal>),
}

impl From<SigningKey> for Credentials {
    fn from(key: SigningKey) -> Credentials {
        Credentials::Key(key)
    }
}

impl Credentials {
    /// The key for the next call.
    pub(crate) async fn signing_key(&self) -> Result<SigningKey, ProviderError> {
        match self {
            Credentials::Key(key) => Ok(key.clone()),
            Credentials::Principal(p) => p.signing_key().await,
        }
    }

    /// A call signed with `key_id` got 401. True: a new key may be worth one retry.
    pub(crate) async fn rejected(&self, key_id: &str) -> bool {
        match self {
            Credentials::Key(_) => false,
            Credentials::Principal(p) => {
                p.rejected(key_id).await;
                true
            }
        }
    }

    /// Whether these credentials can tell the region when the settings do not.
    pub(crate) fn knows_region(&self) -> bool {
        matches!(self, Credentials::Principal(_))
    }

    /// The region the credentials know (instance principals: the metadata service's).
    pub(crate) async fn region(&self) -> Result<Option<String>, ProviderError> {
        match self {
            Credentials::Key(_) => Ok(None),
            Credentials::Principal(p) => p.region().await.map(Some),
        }
    }
}
