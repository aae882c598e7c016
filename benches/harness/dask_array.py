"""Dask side of `cargo xtask bench array`.

Usage: python dask_array.py WORKLOAD [--size N] [--chunk C]

WORKLOAD is one of
    sum-transpose   (x + x.T).mean()
    mean-std        (x + x.T).mean(axis=0).std()
    mean-axis0      x.mean(axis=0)
with x = da.random.random((N, N), chunks=(C, C)), N = 20000 and C = 2000 by default
(the sizes the Tessera side uses; pass smaller ones only for smoke tests).

Prints `seconds=<float>` for graph construction plus compute on the threaded
scheduler, and `result=<float>` (the mean of the result) as a sanity check.
"""

import argparse
import time

import dask
import dask.array as da
import numpy as np

WORKLOADS = {
    "sum-transpose": lambda x: (x + x.T).mean(),
    "mean-std": lambda x: (x + x.T).mean(axis=0).std(),
    "mean-axis0": lambda x: x.mean(axis=0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--size", type=int, default=20000, help="side length of the square array")
    parser.add_argument("--chunk", type=int, default=2000, help="side length of a square chunk")
    args = parser.parse_args()

    with dask.config.set(scheduler="threads"):
        start = time.perf_counter()
        x = da.random.random((args.size, args.size), chunks=(args.chunk, args.chunk))
        result = WORKLOADS[args.workload](x).compute()
        seconds = time.perf_counter() - start

    print(f"seconds={seconds:.6f}")
    print(f"result={float(np.mean(result)):.6f}")


if __name__ == "__main__":
    main()
