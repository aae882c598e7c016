"""Dask side of `cargo xtask bench overhead`: the RSDS scheduling-overhead graphs as raw
Dask task graphs (no collection layer), on the threaded scheduler or on a
dask.distributed LocalCluster of 2 worker processes with 1 thread each.

Usage:
  python dask_overhead.py (merge N | tree DEPTH) (threads | distributed)

`merge N`: N trivial tasks (each returns its index) merged by one task summing them.
`tree DEPTH`: 2**DEPTH trivial leaves added pairwise up to one root.
Computes the graph ROUNDS times on the threaded scheduler and once on the cluster (a
round there takes minutes), and prints the median `seconds=` of submit -> result (the
cluster is started before the clock); checks every result.
"""

import sys
import time

import dask

ROUNDS = 3


def leaf(i):
    return float(i)


def add(*xs):
    return sum(xs)


def merge(n):
    graph = {("leaf", i): (leaf, i) for i in range(n)}
    graph["merge"] = (add, *[("leaf", i) for i in range(n)])
    return graph, "merge", float(n * (n - 1) // 2)


def tree(depth):
    width = 1 << depth
    graph = {(f"tree-0", i): (leaf, i) for i in range(width)}
    for level in range(1, depth + 1):
        for i in range(width >> level):
            graph[(f"tree-{level}", i)] = (add, (f"tree-{level - 1}", 2 * i), (f"tree-{level - 1}", 2 * i + 1))
    return graph, (f"tree-{depth}", 0), float(width * (width - 1) // 2)


def main() -> None:
    match sys.argv[1:]:
        case ["merge", n, mode]:
            graph, out, expected = merge(int(n))
        case ["tree", depth, mode]:
            graph, out, expected = tree(int(depth))
        case _:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    rounds = []

    def timed(get):
        start = time.perf_counter()
        result = get(graph, out)
        rounds.append(time.perf_counter() - start)
        assert result == expected, (result, expected)

    if mode == "threads":
        for _ in range(ROUNDS):
            timed(dask.threaded.get)
    elif mode == "distributed":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                client.wait_for_workers(2)
                timed(client.get)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    seconds = sorted(rounds)[len(rounds) // 2]
    print(f"tasks={len(graph)} rounds_s={rounds} per_task_us={seconds / len(graph) * 1e6:.3f}")
    print(f"seconds={seconds:.9f}")


if __name__ == "__main__":
    main()
