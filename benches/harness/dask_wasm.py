"""Dask side of `cargo xtask bench wasm`.

Usage:
  python dask_wasm.py gaussian VOLUME_ZARR
      The demo's smoothing as Dask users write it: the uint16 volume as float32,
      map_overlap with scipy.ndimage.gaussian_filter, sigma (0, 2, 2), depth (0, 8, 8),
      boundary 'reflect', reduced to its maximum. Prints `seconds=`.
  python dask_wasm.py task-overhead N
      N trivial delayed tasks (each returns its one-element input) computed at once on
      the threaded scheduler. Prints `seconds=` = the whole time divided by N.
"""

import sys
import time

import dask
import dask.array as da
import numpy as np
from scipy import ndimage

SIGMA = (0, 2, 2)
DEPTH = (0, 8, 8)


def gaussian(volume: str) -> float:
    start = time.perf_counter()
    x = da.from_zarr(volume)
    smoothed = x.astype(np.float32).map_overlap(
        ndimage.gaussian_filter, depth=DEPTH, boundary="reflect", sigma=SIGMA, dtype=np.float32
    )
    print(f"max={float(smoothed.max().compute())}")
    return time.perf_counter() - start


def echo(block):
    return block


def task_overhead(n: int) -> float:
    block = np.ones(1)
    tasks = [dask.delayed(echo, pure=False)(block) for _ in range(n)]
    start = time.perf_counter()
    dask.compute(*tasks)
    return (time.perf_counter() - start) / n


def main() -> None:
    with dask.config.set(scheduler="threads"):
        match sys.argv[1:]:
            case ["gaussian", volume]:
                seconds = gaussian(volume)
            case ["task-overhead", n]:
                seconds = task_overhead(int(n))
            case _:
                print(__doc__, file=sys.stderr)
                sys.exit(2)
    print(f"seconds={seconds:.9f}")


if __name__ == "__main__":
    main()
