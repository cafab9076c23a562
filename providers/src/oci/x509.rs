//! The few facts instance principals read from an instance's X.509 certificate, the way
//! Oracle's SDKs read them. Pure.
//!
//! - the tenancy OCID: the value of the first subject attribute that starts with
//!   `opc-tenant:` (or `opc-identity:`), whatever its type (OCI puts it in an `OU`);
//! - the SHA-256 fingerprint of the DER certificate, lowercase hex separated by colons,
//!   as in the keyId `<tenancy>/fed-x509-sha256/<fingerprint>` (oci-go-sdk);
//! - the certificate without its PEM armour and line breaks, as the federation request
//!   carries it (the SDKs' `sanitize_certificate_string`).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The DER of the first certificate in `pem`.
pub fn der_of_pem(pem: &str) -> Result<Vec<u8>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| format!("no PEM certificate found ({e:?})"))
}

/// The base64 body of a PEM block on one line (armour and line breaks removed).
pub fn unarmoured(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// `aa:bb:…`: the SHA-256 of the DER certificate.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The tenancy OCID a leaf certificate names in its subject.
pub fn tenancy_of(der: &[u8]) -> Result<String, String> {
    subject_values(der)?
        .into_iter()
        .find_map(|v| {
            v.strip_prefix("opc-tenant:")
                .or_else(|| v.strip_prefix("opc-identity:"))
                .map(String::from)
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the certificate's subject names no tenancy (opc-tenant:…)".to_string())
}

/// The string values of the subject's attributes, in order.
pub fn subject_values(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, certificate, _) = element(der, 0x30)?;
    let (_, mut tbs, _) = element(certificate, 0x30)?;
    // version [0] EXPLICIT (absent in v1), serialNumber, signature, issuer, validity.
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs, 0xa0)?.2;
    }
    for tag in [0x02, 0x30, 0x30, 0x30] {
        tbs = element(tbs, tag)?.2;
    }
    let (_, mut rdns, _) = element(tbs, 0x30)?;
    let mut values = Vec::new();
    while !rdns.is_empty() {
        let (_, mut set, rest) = element(rdns, 0x31)?;
        rdns = rest;
        while !set.is_empty() {
            let (_, attribute, rest) = element(set, 0x30)?;
            set = rest;
            let (_, _oid, value) = element(attribute, 0x06)?;
            let (tag, text, _) = any_element(value)?;
            // UTF8String, PrintableString, T61String, IA5String; others are not text here.
            if matches!(tag, 0x0c | 0x13 | 0x14 | 0x16) {
                values.push(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    Ok(values)
}

/// The element at the start of `input`, which must have tag `tag`: (tag, contents, rest).
fn element(input: &[u8], tag: u8) -> Result<(u8, &[u8], &[u8]), String> {
    let found = any_element(input)?;
    if found.0 != tag {
        return Err(format!(
            "not a certificate: DER tag {:#04x} where {tag:#04x} belongs",
            found.0
        ));
    }
    Ok(found)
}

fn any_element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let short = || "not a certificate: truncated DER".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(short)?;
    let (&first, rest) = rest.split_first().ok_or_else(short)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("not a certificate: unsupported DER length".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(short());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const CN: &[u8] = &[0x55, 0x04, 0x03];

    /// DER `tag len contents` (short or long form length).
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    fn attribute(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let inner = [tlv(0x06, oid), tlv(tag, value.as_bytes())].concat();
        tlv(0x31, &tlv(0x30, &inner))
    }

    /// A certificate skeleton: what the parser walks, with dummy contents elsewhere.
    fn certificate(subject: &[Vec<u8>], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(tlv(0xa0, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[0x01, 0x02]));
        tbs.extend(tlv(0x30, &tlv(0x06, &[0x2a, 0x86, 0x48])));
        tbs.extend(tlv(
            0x30,
            &attribute(CN, 0x0c, "PKISVC Identity Intermediate"),
        ));
        tbs.extend(tlv(
            0x30,
            &[tlv(0x17, b"260101000000Z"), tlv(0x17, b"270101000000Z")].concat(),
        ));
        tbs.extend(tlv(0x30, &subject.concat()));
        tbs.extend(tlv(0x30, &[0u8; 300]));
        tlv(
            0x30,
            &[tlv(0x30, &tbs), tlv(0x30, &[]), tlv(0x03, &[0, 1])].concat(),
        )
    }

    #[test]
    fn the_tenancy_comes_from_the_subject() {
        let subject = [
            attribute(CN, 0x0c, "ocid1.instance.oc1.iad.abc"),
            attribute(OU, 0x13, "opc-certtype:instance"),
            attribute(OU, 0x0c, "opc-instance:ocid1.instance.oc1.iad.abc"),
            attribute(OU, 0x0c, "opc-compartment:ocid1.compartment.oc1..c"),
            attribute(OU, 0x0c, "opc-tenant:ocid1.tenancy.oc1..t"),
        ];
        for with_version in [true, false] {
            let der = certificate(&subject, with_version);
            assert_eq!(subject_values(&der).unwrap().len(), 5);
            assert_eq!(tenancy_of(&der).unwrap(), "ocid1.tenancy.oc1..t");
        }
        let legacy = certificate(
            &[attribute(OU, 0x0c, "opc-identity:ocid1.tenancy.oc1..x")],
            true,
        );
        assert_eq!(tenancy_of(&legacy).unwrap(), "ocid1.tenancy.oc1..x");
        let none = certificate(&[attribute(CN, 0x0c, "someone")], true);
        assert!(tenancy_of(&none).unwrap_err().contains("opc-tenant"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x30],
            &[0x02, 0x00],
        ] {
            assert!(subject_values(bad).is_err(), "{bad:?}");
        }
        let der = certificate(&[], true);
        for cut in 0..der.len() {
            let _ = subject_values(&der[..cut]);
        }
        assert!(der_of_pem("no pem here").is_err());
    }

    #[test]
    fn fingerprints_and_armour() {
        let fp = sha256_fingerprint(b"abc");
        assert!(fp.starts_with("ba:78:16:bf:"), "{fp}");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert_eq!(
            unarmoured("-----BEGIN CERTIFICATE-----\nMIIB\nAAAA\n-----END CERTIFICATE-----\n"),
            "MIIBAAAA"
        );
    }
}
