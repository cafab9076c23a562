//! The part of an Elastic IP pool a node of a large cluster reads first: the addresses
//! whose last digit is one of a few, selected server-side by a `public-ip` filter with
//! EC2's `*` wildcard (docs/design.md, "Pool parts"). Public IPv4 addresses' last
//! digits are close to uniform, so `k` of the ten digits hold about `k`/10 of the pool.

use aws_sdk_ec2::types::Filter;

use crate::PoolPart;

/// The filter name the part selects on.
pub const PART_FILTER: &str = "public-ip";

/// The `public-ip` patterns of `part` ([`PoolPart::last_digits`]): `*3`, `*4`, …; None
/// for the whole pool.
pub fn last_digit_patterns(part: &PoolPart) -> Option<Vec<String>> {
    let digits = part.last_digits()?;
    Some(digits.iter().map(|d| format!("*{d}")).collect())
}

/// The pool's filters narrowed to `part`, or None to read the whole pool: also when
/// `FILTER` already names `public-ip` (two filters of one name would AND, and a
/// pattern of the user's with ours may select nothing).
pub fn part_filters(pool: &[Filter], part: &PoolPart) -> Option<Vec<Filter>> {
    if pool.iter().any(|f| f.name() == Some(PART_FILTER)) {
        return None;
    }
    let patterns = last_digit_patterns(part)?;
    let mut filters = pool.to_vec();
    filters.push(
        Filter::builder()
            .name(PART_FILTER)
            .set_values(Some(patterns))
            .build(),
    );
    Some(filters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(seed: u64, share: f64) -> PoolPart {
        PoolPart { seed, share }
    }

    #[test]
    fn a_share_becomes_that_many_tenths_rounded_up_from_the_seeds_digit() {
        assert_eq!(last_digit_patterns(&part(7, 0.1)), Some(vec!["*7".into()]));
        assert_eq!(
            last_digit_patterns(&part(18, 0.25)),
            Some(vec!["*8".into(), "*9".into(), "*0".into()])
        );
        assert_eq!(last_digit_patterns(&part(3, 0.01)), Some(vec!["*3".into()]));
    }

    #[test]
    fn every_digit_or_a_nonsense_share_is_the_whole_pool() {
        for share in [0.95, 1.0, 2.0, 0.0, -1.0, f64::NAN] {
            assert_eq!(last_digit_patterns(&part(1, share)), None, "{share}");
        }
    }

    #[test]
    fn the_part_adds_its_filter_unless_filter_names_public_ip_already() {
        let tag = Filter::builder()
            .name("tag:kubeip")
            .values("reserved")
            .build();
        let narrowed = part_filters(std::slice::from_ref(&tag), &part(2, 0.1)).unwrap();
        assert_eq!(narrowed.len(), 2);
        assert_eq!(narrowed[1].name(), Some("public-ip"));
        assert_eq!(narrowed[1].values(), ["*2".to_string()]);
        let own = Filter::builder()
            .name("public-ip")
            .values("198.51.100.*")
            .build();
        assert_eq!(part_filters(&[tag, own], &part(2, 0.1)), None);
    }
}
