//! One TLS crypto provider for the whole process. kube uses rustls on ring; other
//! clients (cloud SDKs, reqwest) may enable aws-lc-rs too, and with two providers
//! compiled in, rustls refuses to guess. Installing ring once, before any client is
//! built, makes the choice explicit.

use std::sync::Once;

pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another provider was installed first (by a host program): keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
