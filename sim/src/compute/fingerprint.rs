//! Fingerprints as Compute sends them: 8 opaque bytes, base64 (`42WmSpB8rSM=`).
//! gcloud refuses anything that is not valid base64, and a write that carries a
//! stale one gets 412.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The fingerprint of generation `n` of something: distinct per generation.
pub fn fingerprint(n: u64) -> String {
    // splitmix64, so consecutive generations do not look alike.
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    STANDARD.encode((z ^ (z >> 31)).to_be_bytes())
}

/// Is `text` valid base64 (what the API accepts as a fingerprint at all)?
pub fn is_valid(text: &str) -> bool {
    !text.is_empty() && STANDARD.decode(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_base64_and_distinct() {
        let a = fingerprint(1);
        assert!(is_valid(&a), "{a}");
        assert_ne!(a, fingerprint(2));
        assert_eq!(a.len(), 12);
        assert!(!is_valid("nicfp="));
        assert!(!is_valid(""));
    }
}
