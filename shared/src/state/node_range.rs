//! A borrowed probe into the catalog's `(lower-cased node, id)` keys, so a
//! range over one node's entries starts without building an owned key (no
//! allocation per lookup on the health and DNS paths).
//!
//! The owned key borrows as `dyn KeyView`, whose order compares the node
//! ASCII-case-insensitively, then the id. Stored nodes are lower-cased, so
//! on stored keys this is exactly the tuple's own order, as `Borrow`
//! requires; a probe may then name the node in any case.

use std::borrow::Borrow;
use std::cmp::Ordering;

use super::catalog::CatalogKey;

/// The two parts of a catalog key, owned or borrowed.
pub trait KeyView {
    fn node(&self) -> &str;
    fn id(&self) -> &str;
}

impl KeyView for CatalogKey {
    fn node(&self) -> &str {
        &self.0
    }

    fn id(&self) -> &str {
        &self.1
    }
}

/// The first key of a node's range: that node (any case) with the empty id.
pub struct NodeStart<'n>(pub &'n str);

impl KeyView for NodeStart<'_> {
    fn node(&self) -> &str {
        self.0
    }

    fn id(&self) -> &str {
        ""
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for CatalogKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// The bytes of `s`, ASCII lower-cased on the fly.
fn lower(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().map(|b| b.to_ascii_lowercase())
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        lower(self.node())
            .cmp(lower(other.node()))
            .then_with(|| self.id().cmp(other.id()))
    }
}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn KeyView + '_ {}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(node: &str, id: &str) -> CatalogKey {
        (node.to_string(), id.to_string())
    }

    #[test]
    fn on_stored_keys_the_view_order_is_the_tuple_order() {
        let keys = [owned("a", "z"), owned("ab", ""), owned("ab", "c1"), owned("b", "")];
        for x in &keys {
            for y in &keys {
                let (vx, vy): (&dyn KeyView, &dyn KeyView) = (x.borrow(), y.borrow());
                assert_eq!(vx.cmp(vy), x.cmp(y), "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn a_node_start_sorts_before_every_key_of_its_node_in_any_case() {
        let start = NodeStart("Web-1");
        let probe: &dyn KeyView = &start;
        let first: &dyn KeyView = &owned("web-1", "");
        let check: &dyn KeyView = &owned("web-1", "serfHealth");
        let before: &dyn KeyView = &owned("web-0", "zzz");
        assert_eq!(probe.cmp(first), Ordering::Equal);
        assert_eq!(probe.cmp(check), Ordering::Less);
        assert_eq!(probe.cmp(before), Ordering::Greater);
    }
}
