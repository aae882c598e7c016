"""Run a command, stream its output, then report its peak memory and wall time.

Usage: python measure.py CMD [ARGS...]

After the command exits this prints two lines on stdout:
    rss_mib=<peak resident set size of the largest waited-for child, in MiB>
    wall_s=<wall-clock seconds>
and exits with the command's exit status (128 + N if it was killed by signal N).
"""

import resource
import subprocess
import sys
import time


def main() -> int:
    cmd = sys.argv[1:]
    if not cmd:
        print("usage: python measure.py CMD [ARGS...]", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        returncode = subprocess.call(cmd)
    except OSError as err:
        print(f"measure.py: cannot run {cmd[0]!r}: {err}", file=sys.stderr)
        return 127
    wall = time.perf_counter() - start
    # On Linux ru_maxrss is in KiB; RUSAGE_CHILDREN holds the largest waited-for descendant.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stdout.flush()
    print(f"rss_mib={round(peak_kib / 1024)}")
    print(f"wall_s={wall:.3f}", flush=True)
    if returncode < 0:
        print(f"measure.py: {cmd[0]} killed by signal {-returncode}", file=sys.stderr)
        return 128 - returncode
    return returncode


if __name__ == "__main__":
    sys.exit(main())
