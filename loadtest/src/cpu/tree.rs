//! A process and all its descendants, from a `(pid, ppid)` list.

use std::collections::HashMap;

/// Every pid in `links` that descends from `root`, `root` first. Bounded
/// by `links`: a cycle (which `/proc` never shows, but a test may) cannot
/// loop, because each pid is visited once.
pub fn descendants(root: u32, links: &[(u32, u32)]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid) in links {
        if pid != ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        out.push(pid);
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids.iter().rev());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_grandchildren_and_skips_strangers() {
        // 10 -> 11 -> 13, 10 -> 12; 20 is unrelated; 1 is init.
        let links = [(1, 0), (10, 1), (11, 10), (12, 10), (13, 11), (20, 1)];
        let mut tree = descendants(10, &links);
        assert_eq!(tree[0], 10);
        tree.sort();
        assert_eq!(tree, vec![10, 11, 12, 13]);
    }

    #[test]
    fn unknown_root_is_just_itself_and_cycles_end() {
        assert_eq!(descendants(99, &[(1, 0)]), vec![99]);
        let mut t = descendants(5, &[(5, 6), (6, 5)]);
        t.sort();
        assert_eq!(t, vec![5, 6]);
    }
}
