//! A byte-level radix tree of routing-path prefixes, each node holding the routes that
//! require that prefix (or that exact path). One walk down the request's routing path
//! collects every route whose path requirement it satisfies.

/// Route ids collected during one lookup: inline up to [`INLINE`], then on the heap.
pub(crate) struct Candidates {
    inline: [u32; INLINE],
    len: usize,
    heap: Vec<u32>,
}

/// Enough for the candidates of most lookups without touching the allocator.
pub(crate) const INLINE: usize = 64;

impl Candidates {
    pub(crate) fn new() -> Self {
        Candidates {
            inline: [0; INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    fn extend(&mut self, ids: &[u32]) {
        if self.heap.is_empty() && self.len + ids.len() <= INLINE {
            self.inline[self.len..self.len + ids.len()].copy_from_slice(ids);
            self.len += ids.len();
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.extend_from_slice(ids);
        }
    }

    /// The ids collected so far, sorted ascending, duplicates removed.
    pub(crate) fn sorted(&mut self) -> &[u32] {
        let ids: &mut [u32] = if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        };
        ids.sort_unstable();
        // Dedup in place.
        let mut kept = 0;
        for i in 0..ids.len() {
            if kept == 0 || ids[i] != ids[kept - 1] {
                ids[kept] = ids[i];
                kept += 1;
            }
        }
        &ids[..kept]
    }
}

#[derive(Debug, Default)]
struct Node {
    /// The bytes on the edge from the parent to this node (empty for the root).
    label: Box<[u8]>,
    /// First byte of each child's label, sorted; `children` is parallel to it.
    first_bytes: Vec<u8>,
    children: Vec<u32>,
    /// Routes whose routing path must start with the path to this node.
    prefix_routes: Vec<u32>,
    /// Routes whose routing path must be exactly the path to this node.
    exact_routes: Vec<u32>,
}

/// The radix tree.
#[derive(Debug)]
pub(crate) struct PathTrie {
    nodes: Vec<Node>,
}

impl Default for PathTrie {
    fn default() -> Self {
        PathTrie {
            nodes: vec![Node::default()],
        }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PathTrie {
    fn add_node(&mut self, label: &[u8]) -> usize {
        self.nodes.push(Node {
            label: label.into(),
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    fn attach(&mut self, parent: usize, child: usize) {
        let first = self.nodes[child].label.first().copied().unwrap_or(0);
        let p = &mut self.nodes[parent];
        let at = p.first_bytes.partition_point(|&b| b < first);
        p.first_bytes.insert(at, first);
        p.children.insert(at, child as u32);
    }

    /// Registers `route` under `prefix` (a required prefix, or the exact path if `exact`).
    pub(crate) fn insert(&mut self, prefix: &[u8], exact: bool, route: u32) {
        let mut node = 0;
        let mut rest = prefix;
        while let Some(&first) = rest.first() {
            let found = self.nodes[node].first_bytes.binary_search(&first);
            let Ok(slot) = found else {
                let new = self.add_node(rest);
                self.attach(node, new);
                node = new;
                break;
            };
            let child = self.nodes[node].children[slot] as usize;
            let label = self.nodes[child].label.clone();
            let common = common_prefix(&label, rest);
            if common < label.len() {
                // Split the edge: node → mid (label[..common]) → child (label[common..]).
                let mid = self.add_node(&label[..common]);
                self.nodes[child].label = label[common..].into();
                self.attach(mid, child);
                self.nodes[node].children[slot] = mid as u32;
                node = mid;
            } else {
                node = child;
            }
            rest = &rest[common..];
        }
        let n = &mut self.nodes[node];
        if exact {
            n.exact_routes.push(route);
        } else {
            n.prefix_routes.push(route);
        }
    }

    /// Adds to `out` every route whose requirement `path` satisfies.
    pub(crate) fn collect(&self, path: &[u8], out: &mut Candidates) {
        let mut node = 0;
        let mut pos = 0;
        loop {
            let n = &self.nodes[node];
            out.extend(&n.prefix_routes);
            let Some(&b) = path.get(pos) else {
                out.extend(&n.exact_routes);
                return;
            };
            let Ok(slot) = n.first_bytes.binary_search(&b) else {
                return;
            };
            let child = n.children[slot] as usize;
            let label = &self.nodes[child].label;
            if !path[pos..].starts_with(label) {
                return;
            }
            pos += label.len();
            node = child;
        }
    }

    /// Number of nodes, for tests.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &PathTrie, path: &str) -> Vec<u32> {
        let mut c = Candidates::new();
        t.collect(path.as_bytes(), &mut c);
        c.sorted().to_vec()
    }

    #[test]
    fn prefixes_and_exact_paths() {
        let mut t = PathTrie::default();
        t.insert(b"", false, 0);
        t.insert(b"/api", false, 1);
        t.insert(b"/api/v1", false, 2);
        t.insert(b"/apx", true, 3);
        t.insert(b"/api", true, 4);
        t.insert(b"/b", false, 5);
        assert_eq!(found(&t, "/api/v1/users"), vec![0, 1, 2]);
        assert_eq!(found(&t, "/api"), vec![0, 1, 4]);
        assert_eq!(found(&t, "/apx"), vec![0, 3]);
        assert_eq!(found(&t, "/apxy"), vec![0]);
        assert_eq!(found(&t, "/ap"), vec![0]);
        assert_eq!(found(&t, "/b"), vec![0, 5]);
        assert_eq!(found(&t, ""), vec![0]);
        assert!(t.node_count() <= 8);
    }

    #[test]
    fn candidates_spill_to_the_heap() {
        let mut c = Candidates::new();
        let many: Vec<u32> = (0..200).rev().collect();
        c.extend(&many[..10]);
        c.extend(&many);
        let s = c.sorted();
        assert_eq!(s.len(), 200);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }
}
