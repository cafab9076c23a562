//! The session key pair of instance principals: RSA-2048, made in memory for every new
//! token (as every OCI SDK does), its public half sent to the auth service, its private
//! half signing the Core Services calls that carry the token.
//!
//! `ring`, which signs everything pinip sends, cannot generate RSA keys; the RustCrypto
//! `rsa` crate generates this one and exports it as PKCS#8, and nothing else. RSA
//! decryption and signing, where `rsa` is not constant-time (RUSTSEC-2023-0071, the
//! Marvin attack), never go through it: `ring` loads the PKCS#8 and signs.

use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::{ErrorClass, ProviderError};

const BITS: usize = 2048;

/// A fresh key pair: the private key as PKCS#8 DER, the public one as the base64 of its
/// SubjectPublicKeyInfo DER (a PEM body without armour, as the federation request wants).
pub struct SessionKey {
    pub pkcs8: Vec<u8>,
    pub public_spki_base64: String,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKey(<private key redacted>)")
    }
}

/// Generate a key pair off the async runtime (it takes tens of milliseconds, more in
/// debug builds).
pub async fn generate() -> Result<SessionKey, ProviderError> {
    tokio::task::spawn_blocking(generate_now)
        .await
        .unwrap_or_else(|e| Err(format!("the key generation task failed: {e}")))
        .map_err(|e| ProviderError::new(ErrorClass::Transient, "GenerateSessionKey", e))
}

fn generate_now() -> Result<SessionKey, String> {
    let mut rng = rsa::rand_core::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, BITS)
        .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
    let pkcs8 = private
        .to_pkcs8_der()
        .map_err(|e| format!("cannot encode the session key: {e}"))?;
    let public = private
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| format!("cannot encode the session public key: {e}"))?;
    Ok(SessionKey {
        pkcs8: pkcs8.as_bytes().to_vec(),
        public_spki_base64: STANDARD.encode(public.as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_loads_into_ring_and_differs_each_time() {
        let a = generate_now().unwrap();
        let b = generate_now().unwrap();
        assert_ne!(a.public_spki_base64, b.public_spki_base64);
        let key = ring::signature::RsaKeyPair::from_pkcs8(&a.pkcs8).expect("ring loads it");
        assert_eq!(key.public().modulus_len(), BITS / 8);
        assert!(!format!("{a:?}").contains(&a.public_spki_base64[..20]));
    }
}
