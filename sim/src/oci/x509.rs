//! What the simulated auth service reads from a presented instance certificate: the
//! subject's attribute values (`opc-instance:…`, `opc-tenant:…`) and the RSA key in
//! its SubjectPublicKeyInfo. (The chain is checked by `webpki`, in [`super::identity`].)

use super::signature::{der_element, rsa_key_of_spki};

pub struct Leaf {
    /// The subject's string values, in order.
    pub subject: Vec<String>,
    /// PKCS#1 `RSAPublicKey` DER.
    pub rsa_public_key: Vec<u8>,
}

impl Leaf {
    /// The value after `prefix` (`opc-tenant:`) in the subject, if any.
    pub fn named(&self, prefix: &str) -> Option<&str> {
        self.subject.iter().find_map(|v| v.strip_prefix(prefix))
    }
}

fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let (found, contents, rest) = der_element(input)?;
    if found != tag {
        return Err(format!("DER tag {found:#04x} where {tag:#04x} belongs"));
    }
    Ok((contents, rest))
}

pub fn parse_leaf(der: &[u8]) -> Result<Leaf, String> {
    let (certificate, _) = expect(der, 0x30)?;
    let (mut tbs, _) = expect(certificate, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = expect(tbs, 0xa0)?.1;
    }
    // serialNumber, signature, issuer, validity
    for tag in [0x02, 0x30, 0x30, 0x30] {
        tbs = expect(tbs, tag)?.1;
    }
    let (mut rdns, rest) = expect(tbs, 0x30)?;
    let mut subject = Vec::new();
    while !rdns.is_empty() {
        let (mut set, more) = expect(rdns, 0x31)?;
        rdns = more;
        while !set.is_empty() {
            let (attribute, more) = expect(set, 0x30)?;
            set = more;
            let (_, value) = expect(attribute, 0x06)?;
            let (tag, text, _) = der_element(value)?;
            if matches!(tag, 0x0c | 0x13 | 0x14 | 0x16) {
                subject.push(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    // The SubjectPublicKeyInfo element, whole (tag and length included).
    let (_, _, after) = der_element(rest)?;
    let spki = &rest[..rest.len() - after.len()];
    Ok(Leaf {
        subject,
        rsa_public_key: rsa_key_of_spki(spki)?,
    })
}

/// `RSAPublicKey { modulus, publicExponent }` → (n, e), big-endian without leading zeros.
pub fn rsa_components(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (sequence, _) = expect(der, 0x30)?;
    let (n, rest) = expect(sequence, 0x02)?;
    let (e, _) = expect(rest, 0x02)?;
    let trim = |b: &[u8]| {
        let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        b[start..].to_vec()
    };
    Ok((trim(n), trim(e)))
}
