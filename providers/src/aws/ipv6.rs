//! The IPv6 pool on AWS. EC2 has no "reserved IPv6 address" object, so the pool is a
//! setting: a list of addresses and/or CIDRs (`IPV6_POOL`), all inside the IPv6 block of
//! the nodes' subnet. A node can only take the addresses of its own subnet; the first
//! four and the last address of every subnet block are AWS's own and never offered.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use ipnet::Ipv6Net;

/// More than this many addresses is a typo (a /64), not a pool.
pub const MAX_POOL_ADDRESSES: u128 = 4096;

/// The configured IPv6 pool, in the order written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Pool {
    entries: Vec<Ipv6Net>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("IPV6_POOL entry {entry:?} is not usable: {reason}; give IPv6 addresses and/or CIDRs (at most {MAX_POOL_ADDRESSES} addresses), separated by commas, e.g. 2600:1f18:aa:bb00::100/120 or 2600:1f18:aa:bb00::10,2600:1f18:aa:bb00::11")]
pub struct Ipv6PoolError {
    pub entry: String,
    pub reason: String,
}

impl Ipv6Pool {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every address of the pool that lies in one of `subnet_blocks`, minus the addresses
    /// AWS reserves there, without duplicates, in the configured order.
    pub fn addresses_in(&self, subnet_blocks: &[Ipv6Net]) -> Vec<Ipv6Addr> {
        let mut out: Vec<Ipv6Addr> = Vec::new();
        for entry in &self.entries {
            for address in every_address(entry) {
                let usable = subnet_blocks
                    .iter()
                    .any(|block| block.contains(&address) && !aws_reserved(block, address));
                if usable && !out.contains(&address) {
                    out.push(address);
                }
            }
        }
        out
    }

    /// Every address of the pool, whatever the subnet.
    pub fn all(&self) -> Vec<Ipv6Addr> {
        let mut out: Vec<Ipv6Addr> = Vec::new();
        for address in self.entries.iter().flat_map(every_address) {
            if !out.contains(&address) {
                out.push(address);
            }
        }
        out
    }
}

/// Every address of the network (IPv6 has no broadcast; `hosts()` would skip the
/// subnet-router anycast address, which a single /128 entry must keep).
fn every_address(net: &Ipv6Net) -> impl Iterator<Item = Ipv6Addr> {
    (u128::from(net.network())..=u128::from(net.broadcast())).map(Ipv6Addr::from)
}

/// AWS keeps the first four and the last address of every subnet block.
fn aws_reserved(block: &Ipv6Net, address: Ipv6Addr) -> bool {
    let offset = u128::from(address) - u128::from(block.network());
    offset < 4 || address == block.broadcast()
}

impl FromStr for Ipv6Pool {
    type Err = Ipv6PoolError;

    fn from_str(text: &str) -> Result<Ipv6Pool, Ipv6PoolError> {
        let mut entries = Vec::new();
        let mut total: u128 = 0;
        for raw in text
            .split([',', ' ', ';'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let fail = |reason: &str| Ipv6PoolError {
                entry: raw.to_string(),
                reason: reason.to_string(),
            };
            let net = if raw.contains('/') {
                let net: Ipv6Net = raw.parse().map_err(|_| fail("it is not an IPv6 CIDR"))?;
                if net.network() != net.addr() {
                    return Err(fail(&format!(
                        "host bits are set; did you mean {}?",
                        net.trunc()
                    )));
                }
                net
            } else {
                let address: Ipv6Addr =
                    raw.parse().map_err(|_| fail("it is not an IPv6 address"))?;
                Ipv6Net::from(address)
            };
            let size = 1u128 << (128 - u32::from(net.prefix_len())).min(127);
            total = total.saturating_add(size);
            if total > MAX_POOL_ADDRESSES {
                return Err(fail("the pool would hold too many addresses"));
            }
            entries.push(net);
        }
        if entries.is_empty() {
            return Err(Ipv6PoolError {
                entry: text.to_string(),
                reason: "it names no address".into(),
            });
        }
        Ok(Ipv6Pool { entries })
    }
}

impl fmt::Display for Ipv6Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .entries
            .iter()
            .map(|n| {
                if n.prefix_len() == 128 {
                    n.addr().to_string()
                } else {
                    n.to_string()
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Ipv6Net {
        text.parse().unwrap()
    }

    #[test]
    fn lists_and_cidrs_parse_and_print_back() {
        let pool: Ipv6Pool = "2001:db8:1:1::10, 2001:db8:1:1::20/126".parse().unwrap();
        assert_eq!(pool.to_string(), "2001:db8:1:1::10,2001:db8:1:1::20/126");
        assert_eq!(pool.all().len(), 5);
    }

    #[test]
    fn only_addresses_of_the_subnet_are_offered_and_aws_reserved_ones_never() {
        let pool: Ipv6Pool = "2001:db8:1:1::/126,2001:db8:1:1::100,2001:db8:9:9::5"
            .parse()
            .unwrap();
        let offered = pool.addresses_in(&[block("2001:db8:1:1::/64")]);
        // ::0 to ::3 are AWS's; the other subnet's address is not this node's to take.
        assert_eq!(
            offered,
            vec!["2001:db8:1:1::100".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(pool.addresses_in(&[]).is_empty());
    }

    #[test]
    fn bad_pools_are_refused_with_the_entry_named() {
        for (text, bad) in [
            ("2001:db8::1,192.0.2.1", "192.0.2.1"),
            ("2001:db8::/64", "2001:db8::/64"),
            ("2001:db8::1/120", "2001:db8::1/120"),
            ("nonsense", "nonsense"),
            (" , ", " , "),
        ] {
            let err = text.parse::<Ipv6Pool>().unwrap_err();
            assert_eq!(err.entry, bad, "{text}");
            assert!(err.to_string().contains("IPV6_POOL"), "{err}");
        }
        assert!("2001:db8::/116".parse::<Ipv6Pool>().is_ok());
        assert!("2001:db8::/115".parse::<Ipv6Pool>().is_err());
    }
}
