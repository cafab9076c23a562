//! The part of an Elastic IP pool a node of a large cluster reads first: the addresses
//! whose last digit is one of a few, selected server-side by a `public-ip` filter with
//! EC2's `*` wildcard (docs/design.md, "Pool parts"). Public IPv4 addresses' last
//! digits are close to uniform, so `k` of the ten digits hold about `k`/10 of the pool.

use aws_sdk_ec2::types::Filter;

use crate::{PoolPart, PART_FILTER};

/// The pool's filters narrowed to `part` ([`PoolPart::public_ip_patterns`]), or None to
/// read the whole pool.
pub fn part_filters(pool: &[Filter], part: &PoolPart) -> Option<Vec<Filter>> {
    let patterns = part.public_ip_patterns(pool.iter().filter_map(Filter::name))?;
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
