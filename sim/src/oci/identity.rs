//! The simulator's instance identity PKI, made at start: a root CA and an intermediate
//! (ECDSA P-256, `rcgen` on ring), and for each instance that asks its metadata service
//! a leaf certificate whose subject says who it is, as OCI's do:
//! `CN=<instance OCID>`, `OU=opc-instance:<instance OCID>`, `OU=opc-tenant:<tenancy>`,
//! `O=opc-compartment:<compartment>`, clientAuth, signed by the intermediate, with the
//! simulator's instance key (RSA-2048, [`TEST_INSTANCE_KEY_PEM`]).
//!
//! The auth service accepts a leaf only if it chains through the presented
//! intermediate to this root (`webpki`, at the time of the request).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::signature::pem_body;

/// The RSA key of every simulated instance's certificate (PKCS#8 PEM). Made for the
/// simulator and nothing else.
pub const TEST_INSTANCE_KEY_PEM: &str = include_str!("test_instance_key.pem");

pub struct Pki {
    root_der: Vec<u8>,
    intermediate: rcgen::Certificate,
    intermediate_key: KeyPair,
    intermediate_pem: String,
    leaf_key: KeyPair,
    /// instance OCID → its leaf certificate (PEM), until rotated.
    issued: BTreeMap<String, String>,
}

/// `-----BEGIN <label>-----` with the base64 of `der` in lines of 64.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn failed(e: rcgen::Error) -> String {
    format!("the test PKI: {e}")
}

fn ca_params(name: &str) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "pinip OCI simulator");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

impl Pki {
    pub fn new() -> Result<Pki, String> {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let root = ca_params("PKISVC Identity Root (simulated)")?
            .self_signed(&root_key)
            .map_err(failed)?;
        let intermediate_key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let intermediate = ca_params("PKISVC Identity Intermediate us-ashburn-1 (simulated)")?
            .signed_by(&intermediate_key, &root, &root_key)
            .map_err(failed)?;
        let leaf_der = pem_body(TEST_INSTANCE_KEY_PEM, "PRIVATE KEY")?;
        let leaf_key = KeyPair::try_from(leaf_der.as_slice()).map_err(failed)?;
        Ok(Pki {
            root_der: root.der().to_vec(),
            intermediate_pem: pem("CERTIFICATE", intermediate.der()),
            intermediate,
            intermediate_key,
            leaf_key,
            issued: BTreeMap::new(),
        })
    }

    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate_pem
    }

    /// The instance's leaf certificate (PEM), issued at its first request.
    pub fn leaf_for(
        &mut self,
        instance: &str,
        compartment: &str,
        tenancy: &str,
    ) -> Result<String, String> {
        if let Some(known) = self.issued.get(instance) {
            return Ok(known.clone());
        }
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, instance);
        dn.push(
            DnType::OrganizationalUnitName,
            format!("opc-instance:{instance}"),
        );
        // rcgen keeps one value per attribute type: the second OU goes by its OID.
        dn.push(
            DnType::CustomDnType(vec![2, 5, 4, 11]),
            format!("opc-tenant:{tenancy}"),
        );
        dn.push(
            DnType::OrganizationName,
            format!("opc-compartment:{compartment}"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = params
            .signed_by(&self.leaf_key, &self.intermediate, &self.intermediate_key)
            .map_err(failed)?;
        let text = pem("CERTIFICATE", leaf.der());
        self.issued.insert(instance.to_string(), text.clone());
        Ok(text)
    }

    /// Forget the issued leaves: the next request gets a new certificate (a rotation).
    pub fn rotate(&mut self) {
        self.issued.clear();
    }

    /// Whether `leaf` chains through one of `intermediates` to the root, now.
    pub fn verify_chain(&self, leaf: &[u8], intermediates: &[Vec<u8>]) -> Result<(), String> {
        let root = CertificateDer::from(self.root_der.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&root).map_err(|e| format!("{e:?}"))?;
        let leaf = CertificateDer::from(leaf);
        let end_entity = webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| format!("the certificate: {e:?}"))?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        end_entity
            .verify_for_usage(
                &[
                    webpki::ring::ECDSA_P256_SHA256,
                    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
                ],
                &[anchor],
                &intermediates,
                UnixTime::now(),
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .map(|_| ())
            .map_err(|e| {
                format!("the certificate does not chain to the instance identity root: {e:?}")
            })
    }
}
