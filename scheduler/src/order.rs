//! Task priorities: a depth-first post-order of each submission, in the spirit of
//! `dask.order`.
//!
//! Starting from the wanted keys in the order given, a depth-first search visits each
//! task's dependencies in argument order and numbers a task once all its dependencies
//! are numbered. Every dependency therefore comes before its dependents, so with one
//! thread the scheduler runs tasks exactly in this order: one branch is finished
//! before the next starts, and intermediates are consumed (and released) soon after
//! they are made. A priority puts the submission's generation first, so the tasks
//! of an earlier submission run before those of a later one.

/// When a task runs relative to the others: lower runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Priority(u64);

impl Priority {
    /// The priority of the task numbered `position` in submission `generation`.
    pub(crate) fn new(generation: u32, position: u32) -> Self {
        Priority(u64::from(generation) << 32 | u64::from(position))
    }
}

/// The nodes reachable from `roots` in depth-first post-order, where `children(i)`
/// lists node `i`'s dependencies in order and nodes are `0..n`. An edge back to a
/// node still being visited (a cycle) is not followed, so such a node comes before
/// one of its dependencies; callers detect that.
pub(crate) fn post_order<I, F>(n: usize, roots: impl IntoIterator<Item = u32>, children: F) -> Vec<u32>
where
    F: Fn(u32) -> I,
    I: Iterator<Item = u32>,
{
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut stack: Vec<(u32, I)> = Vec::new();
    for root in roots {
        if seen[root as usize] {
            continue;
        }
        seen[root as usize] = true;
        stack.push((root, children(root)));
        while let Some((node, deps)) = stack.last_mut() {
            match deps.find(|&c| !seen[c as usize]) {
                Some(child) => {
                    seen[child as usize] = true;
                    stack.push((child, children(child)));
                }
                None => {
                    order.push(*node);
                    stack.pop();
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(deps: &[&[u32]], roots: &[u32]) -> Vec<u32> {
        post_order(deps.len(), roots.iter().copied(), |i| deps[i as usize].iter().copied())
    }

    #[test]
    fn dependencies_come_first_in_argument_order() {
        // 4 = f(2, 3); 2 = g(0, 1); 3 = h(1)
        let deps: &[&[u32]] = &[&[], &[], &[0, 1], &[1], &[2, 3]];
        assert_eq!(order(deps, &[4]), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn roots_are_visited_in_the_order_given_and_shared_nodes_once() {
        let deps: &[&[u32]] = &[&[], &[0], &[0]];
        assert_eq!(order(deps, &[2, 1, 2]), vec![0, 2, 1]);
    }

    #[test]
    fn unreachable_nodes_are_left_out_and_cycles_terminate() {
        let deps: &[&[u32]] = &[&[1], &[0], &[]];
        assert_eq!(order(deps, &[0]), vec![1, 0]);
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        let n = 200_000u32;
        let got = post_order(n as usize, [n - 1], |i| i.checked_sub(1).into_iter());
        assert_eq!(got.len(), n as usize);
        assert_eq!(got[0], 0);
    }

    #[test]
    fn generations_order_before_positions() {
        assert!(Priority::new(0, u32::MAX) < Priority::new(1, 0));
        assert!(Priority::new(3, 1) < Priority::new(3, 2));
    }
}
