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
//!
//! Two refinements keep values short-lived. Right after a task is numbered, any other
//! task that has become runnable and is the last consumer of one of its inputs is
//! numbered too, because running it releases that input: in `x + x.T` this pairs
//! block `(i, j)` with block `(j, i)`, which share both inputs, instead of holding
//! every block below the diagonal until the search reaches it. Then every dependent
//! of the task itself that has become runnable is numbered, so a value with several
//! consumers meets them all soon after it is made: in the demo's pipeline each
//! volume block feeds both the projections and the smoothing of its neighbours, and
//! a block's smoothing (and the reductions of its result) runs as soon as its
//! neighbourhood has been read, rather than when the search reaches the smoothing's
//! own root after the whole volume has been read. Several such dependents are taken in
//! the plain depth-first order, so the result does not depend on how the submission
//! numbered its tasks.

/// When a task runs relative to the others: lower runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Priority(u64);

impl Priority {
    /// The priority of the task numbered `position` in submission `generation`.
    pub(crate) fn new(generation: u32, position: u32) -> Self {
        Priority(u64::from(generation) << 32 | u64::from(position))
    }
}

/// The nodes reachable from `roots` in the order described in the module docs, where
/// `children(i)` lists node `i`'s dependencies in order and nodes are `0..n`. An edge
/// back to a node still being visited (a cycle) is not followed, so such a node comes
/// before one of its dependencies; callers detect that.
pub(crate) fn post_order<I, F>(n: usize, roots: impl IntoIterator<Item = u32>, children: F) -> Vec<u32>
where
    F: Fn(u32) -> I,
    I: Iterator<Item = u32>,
{
    let roots: Vec<u32> = roots.into_iter().collect();
    let mut links = Links::new(n, &roots, &children);
    let mut seen = vec![false; n];
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
                    if !links.numbered[*node as usize] {
                        links.number_with_followers(*node, &mut seen);
                    }
                    stack.pop();
                }
            }
        }
    }
    links.order
}

/// Dependency links among the reachable nodes, and what numbering has used up.
struct Links {
    /// Distinct dependencies of node `i` in argument order: `deps[dep_at[i]..dep_at[i + 1]]`.
    deps: Vec<u32>,
    dep_at: Vec<usize>,
    /// Reachable dependents of node `i`: `users[user_at[i]..user_at[i + 1]]`.
    users: Vec<u32>,
    user_at: Vec<usize>,
    /// Dependencies of each node not numbered yet.
    deps_left: Vec<u32>,
    /// Dependents of each node not numbered yet.
    users_left: Vec<u32>,
    numbered: Vec<bool>,
    order: Vec<u32>,
    /// Scratch stack of [`Links::number_with_followers`]: (node, position among its
    /// inputs and then its dependents of the next one to look at).
    walk: Vec<(u32, usize)>,
}

impl Links {
    /// Collects the links of the nodes reachable from `roots`. Each node's dependents
    /// are listed in the plain depth-first post-order (without the refinements), so
    /// ties among followers do not depend on how the nodes happen to be numbered.
    fn new<I: Iterator<Item = u32>>(n: usize, roots: &[u32], children: &impl Fn(u32) -> I) -> Links {
        // Each reachable node's distinct dependencies, in visiting order: node `i`'s are
        // `visited[span[i].0..span[i].1]`.
        let mut visited: Vec<u32> = Vec::new();
        let mut span = vec![(0usize, 0usize); n];
        // `listed_by[d] == i + 1` once `d` is in node `i`'s list (drops repeated arguments).
        let mut listed_by = vec![0u32; n];
        let mut entered = vec![false; n];
        let mut list = |i: u32, visited: &mut Vec<u32>| {
            let start = visited.len();
            visited.extend(children(i).filter(|&d| std::mem::replace(&mut listed_by[d as usize], i + 1) != i + 1));
            (start, visited.len())
        };
        // The plain post-order, by a depth-first search with a cursor into `visited`.
        let mut plain: Vec<u32> = Vec::new();
        let mut stack: Vec<(u32, usize)> = Vec::new();
        for &r in roots {
            if std::mem::replace(&mut entered[r as usize], true) {
                continue;
            }
            span[r as usize] = list(r, &mut visited);
            stack.push((r, span[r as usize].0));
            while let Some((node, cursor)) = stack.last_mut() {
                let node = *node;
                if *cursor == span[node as usize].1 {
                    plain.push(node);
                    stack.pop();
                    continue;
                }
                let d = visited[*cursor];
                *cursor += 1;
                if !std::mem::replace(&mut entered[d as usize], true) {
                    span[d as usize] = list(d, &mut visited);
                    stack.push((d, span[d as usize].0));
                }
            }
        }
        let node_deps = |i: usize| &visited[span[i].0..span[i].1];
        let mut dep_at = Vec::with_capacity(n + 1);
        let mut deps = Vec::with_capacity(visited.len());
        let mut users_left = vec![0u32; n];
        dep_at.push(0);
        for i in 0..n {
            let ds = node_deps(i);
            for &d in ds {
                users_left[d as usize] += 1;
            }
            deps.extend_from_slice(ds);
            dep_at.push(deps.len());
        }
        let mut user_at = Vec::with_capacity(n + 1);
        user_at.push(0);
        for &count in &users_left {
            user_at.push(user_at.last().copied().unwrap_or(0) + count as usize);
        }
        let mut fill = user_at.clone();
        let mut users = vec![0u32; deps.len()];
        for &i in &plain {
            for &d in node_deps(i as usize) {
                users[fill[d as usize]] = i;
                fill[d as usize] += 1;
            }
        }
        let deps_left = (0..n).map(|i| node_deps(i).len() as u32).collect();
        Links {
            deps,
            dep_at,
            users,
            user_at,
            deps_left,
            users_left,
            numbered: vec![false; n],
            order: Vec::with_capacity(n),
            walk: Vec::new(),
        }
    }

    fn deps_of(&self, i: u32) -> &[u32] {
        &self.deps[self.dep_at[i as usize]..self.dep_at[i as usize + 1]]
    }

    fn users_of(&self, i: u32) -> &[u32] {
        &self.users[self.user_at[i as usize]..self.user_at[i as usize + 1]]
    }

    /// Numbers `node`, then, depth first from each task just numbered: every runnable
    /// task that is the last consumer of one of its inputs, then every dependent of its
    /// own that has become runnable (marking those `seen`; one the search is still
    /// visiting is numbered here and skipped when the search leaves it).
    fn number_with_followers(&mut self, node: u32, seen: &mut [bool]) {
        self.number(node);
        let mut stack = std::mem::take(&mut self.walk);
        stack.push((node, 0));
        while let Some((x, next)) = stack.last_mut() {
            let x = *x;
            let (ninputs, nusers) = (self.deps_of(x).len(), self.users_of(x).len());
            if *next >= ninputs + nusers {
                stack.pop();
                continue;
            }
            let at = *next;
            *next += 1;
            let follower = if at < ninputs {
                let input = self.deps_of(x)[at];
                if self.users_left[input as usize] != 1 {
                    continue;
                }
                self.users_of(input).iter().copied().find(|&u| !self.numbered[u as usize])
            } else {
                Some(self.users_of(x)[at - ninputs])
            };
            if let Some(u) = follower
                && !self.numbered[u as usize]
                && self.deps_left[u as usize] == 0
            {
                seen[u as usize] = true;
                self.number(u);
                stack.push((u, 0));
            }
        }
        self.walk = stack;
    }

    fn number(&mut self, x: u32) {
        self.numbered[x as usize] = true;
        self.order.push(x);
        for k in 0..self.deps_of(x).len() {
            let d = self.deps_of(x)[k];
            self.users_left[d as usize] -= 1;
        }
        for k in 0..self.users_of(x).len() {
            let u = self.users_of(x)[k];
            self.deps_left[u as usize] -= 1;
        }
    }
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
    fn the_last_consumer_of_a_shared_input_runs_next() {
        // x_ij = 3i + j (no deps); a_ij = 9 + 3i + j = f(x_ij, x_ji); row sums
        // r_i = 18 + i over a_i*; root 21 = g(r_0, r_1, r_2): the graph of `(x + x.T).sum()`.
        let x = |i: u32, j: u32| 3 * i + j;
        let a = |i: u32, j: u32| 9 + 3 * i + j;
        let mut deps: Vec<Vec<u32>> = vec![Vec::new(); 22];
        for i in 0..3 {
            for j in 0..3 {
                deps[a(i, j) as usize] = vec![x(i, j), x(j, i)];
                deps[18 + i as usize].push(a(i, j));
            }
        }
        deps[21] = vec![18, 19, 20];
        let got = post_order(22, [21], |i| deps[i as usize].clone().into_iter());
        let at = |node: u32| got.iter().position(|&n| n == node).expect("numbered");
        // Each mirrored pair is numbered back to back: its two inputs are then released.
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            assert_eq!(at(a(j, i)), at(a(i, j)) + 1, "order {got:?}");
        }
        for (node, ds) in deps.iter().enumerate() {
            assert!(ds.iter().all(|&d| at(d) < at(node as u32)), "order {got:?}");
        }
    }

    #[test]
    fn a_consumer_waits_for_all_its_inputs() {
        // 3 = f(0, 1); 4 = g(0, 2); root 5 = h(3, 4): after 3, node 4 still needs 2.
        let deps: &[&[u32]] = &[&[], &[], &[], &[0, 1], &[0, 2], &[3, 4]];
        assert_eq!(order(deps, &[5]), vec![0, 1, 3, 2, 4, 5]);
    }

    #[test]
    fn runnable_dependents_follow_the_task_they_need() {
        // Reads 0..3; per read i, a cheap summary 3 + i (the first root's inputs) and a
        // neighbourhood task 6 + i over reads i and i + 1 (the second root's inputs).
        // Root 8 = f(3, 4, 5) is visited first, root 9 = g(6, 7) second.
        let deps: &[&[u32]] = &[&[], &[], &[], &[0], &[1], &[2], &[0, 1], &[1, 2], &[3, 4, 5], &[6, 7]];
        // Each neighbourhood task runs as soon as its two reads exist, so read 0 is
        // released before read 2 is made, and root 9 as soon as its inputs exist.
        assert_eq!(order(deps, &[8, 9]), vec![0, 3, 1, 4, 6, 2, 5, 7, 9, 8]);
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
