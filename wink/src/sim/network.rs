//! Which hosts can reach which: the partitions of a simulated network.

use std::collections::BTreeMap;

/// Partitions between pairs of hosts; several may overlap (a pair is cut
/// while any partition of it lasts).
#[derive(Debug)]
pub(super) struct Network {
    cuts: BTreeMap<(usize, usize), u32>,
}

impl Network {
    pub(super) fn new(_hosts: usize) -> Self {
        Network {
            cuts: BTreeMap::new(),
        }
    }

    fn key(a: usize, b: usize) -> (usize, usize) {
        (a.min(b), a.max(b))
    }

    /// Cuts `a` from `b` until a matching [`Network::heal`].
    pub(super) fn partition(&mut self, a: usize, b: usize) {
        *self.cuts.entry(Self::key(a, b)).or_insert(0) += 1;
    }

    /// Ends one partition of `a` and `b`.
    pub(super) fn heal(&mut self, a: usize, b: usize) {
        let key = Self::key(a, b);
        if let Some(n) = self.cuts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.cuts.remove(&key);
            }
        }
    }

    /// Whether datagrams between `a` and `b` are lost. A host always
    /// reaches itself.
    pub(super) fn is_cut(&self, a: usize, b: usize) -> bool {
        a != b && self.cuts.contains_key(&Self::key(a, b))
    }
}
