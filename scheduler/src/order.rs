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
//! One refinement keeps shared inputs short-lived: right after a task is numbered,
//! any other task that has become runnable and is the last consumer of one of its
//! inputs is numbered too, because running it releases that input. In `x + x.T` this
//! pairs block `(i, j)` with block `(j, i)`, which share both inputs, instead of
//! holding every block below the diagonal until the search reaches it.

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
                    links.number_with_releasers(*node, &mut seen);
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
    /// Scratch stack of [`Links::number_with_releasers`]: (node, next input to look at).
    walk: Vec<(u32, usize)>,
}

impl Links {
    /// Collects the links of the nodes reachable from `roots`.
    fn new<I: Iterator<Item = u32>>(n: usize, roots: &[u32], children: &impl Fn(u32) -> I) -> Links {
        let mut reachable = vec![false; n];
        let mut todo: Vec<u32> = Vec::new();
        for &r in roots {
            if !std::mem::replace(&mut reachable[r as usize], true) {
                todo.push(r);
            }
        }
        // Each reachable node's distinct dependencies, in visiting order: node `i`'s are
        // `visited[span[i].0..span[i].1]`.
        let mut visited: Vec<u32> = Vec::new();
        let mut span = vec![(0usize, 0usize); n];
        // `listed_by[d] == i + 1` once `d` is in node `i`'s list (drops repeated arguments).
        let mut listed_by = vec![0u32; n];
        while let Some(i) = todo.pop() {
            let start = visited.len();
            visited.extend(children(i).filter(|&d| std::mem::replace(&mut listed_by[d as usize], i + 1) != i + 1));
            for &d in &visited[start..] {
                if !std::mem::replace(&mut reachable[d as usize], true) {
                    todo.push(d);
                }
            }
            span[i as usize] = (start, visited.len());
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
        for i in 0..n {
            for &d in node_deps(i) {
                users[fill[d as usize]] = i as u32;
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

    /// Numbers `node`, then, depth first, every unvisited runnable task that is the
    /// last consumer of an input of a task just numbered (marking those `seen`).
    fn number_with_releasers(&mut self, node: u32, seen: &mut [bool]) {
        self.number(node);
        let mut stack = std::mem::take(&mut self.walk);
        stack.push((node, 0));
        while let Some((x, next)) = stack.last_mut() {
            let Some(&input) = self.deps_of(*x).get(*next) else {
                stack.pop();
                continue;
            };
            *next += 1;
            if self.users_left[input as usize] != 1 {
                continue;
            }
            let last = self.users_of(input).iter().copied().find(|&u| !self.numbered[u as usize]);
            if let Some(u) = last
                && !seen[u as usize]
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
