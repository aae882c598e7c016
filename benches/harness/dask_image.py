"""Dask side of `cargo xtask bench image`.

Usage: python dask_image.py VOLUME_ZARR OUT_DIR

The same pipeline as `tessera demo`, on the uint16 volume Tessera generated
(64x2048x2048, chunks 16x512x512 in the benchmark):
  1. max and mean projections over z;
  2. gaussian smoothing, sigma (0, 2, 2), on float32 data: map_overlap with
     scipy.ndimage.gaussian_filter, depth (0, 8, 8), boundary 'reflect';
  3. a 256-bin histogram of the smoothed volume over its min..max (computed
     first, together with the projections);
  4. Otsu's threshold from that histogram (skimage.filters.threshold_otsu);
  5. mask = smoothed > threshold, written to OUT_DIR/mask.zarr.

Prints `seconds=<float>` (everything after opening the volume), then
`threshold=<float>` and `foreground=<fraction of voxels in the mask>`.
"""

import argparse
import os
import time

import dask
import dask.array as da
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

SIGMA = (0, 2, 2)
DEPTH = (0, 8, 8)
BINS = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volume", help="path of the uint16 input volume (Zarr)")
    parser.add_argument("out_dir", help="directory that receives mask.zarr")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    mask_path = os.path.join(args.out_dir, "mask.zarr")

    with dask.config.set(scheduler="threads"):
        start = time.perf_counter()
        volume = da.from_zarr(args.volume)
        max_projection = volume.max(axis=0)
        mean_projection = volume.mean(axis=0)
        smoothed = volume.astype(np.float32).map_overlap(
            ndimage.gaussian_filter, depth=DEPTH, boundary="reflect", sigma=SIGMA, dtype=np.float32
        )
        lo, hi, _, _ = da.compute(smoothed.min(), smoothed.max(), max_projection, mean_projection)

        counts, edges = da.histogram(smoothed, bins=BINS, range=(float(lo), float(hi)))
        counts, edges = da.compute(counts, edges)
        centers = (edges[:-1] + edges[1:]) / 2
        threshold = float(threshold_otsu(hist=(counts, centers)))

        mask = smoothed > threshold
        write = mask.to_zarr(mask_path, overwrite=True, compute=False)
        _, foreground_voxels = da.compute(write, mask.sum())
        seconds = time.perf_counter() - start

    print(f"seconds={seconds:.6f}")
    print(f"threshold={threshold:.6f}")
    print(f"foreground={int(foreground_voxels) / mask.size:.6f}")


if __name__ == "__main__":
    main()
