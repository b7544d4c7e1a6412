"""The overhead shapes of benches/overhead.rs, run with dask.delayed.

    pip install dask
    python3 benches/dask_compare.py            # 10 to 15 minutes
    python3 benches/dask_compare.py --quick    # without the 10,000-node chain and lattice

For each shape and for dask's threaded and synchronous schedulers, prints
the median over a few rounds of two costs, in microseconds per task:

- built + computed: making the `dask.delayed` objects, then `dask.compute`
  of the root; what `benches/overhead.rs` times for `delayed` (which also
  drops the graph);
- compute alone: `dask.compute` of a root built beforehand (the graph's
  conversion, optimization and scheduling, and running the tasks).

Building a dask.delayed graph is quadratic in chains and lattices (each
call merges its inputs' graphs), so the built + computed cost per task
grows with the size of the graph; the 10,000-node shapes take about half a
minute each to build. Building also recurses through a chain, so the
recursion limit is raised.
"""

import sys
import time

try:
    import dask
    from dask import delayed
except ImportError:
    sys.exit("dask is not installed: pip install dask")

ROUNDS = 3


def inc(x):
    return x + 1


def add(a, b):
    return a + b


def total(xs):
    return sum(xs)


def chain(n):
    node = delayed(inc)(0)
    for _ in range(1, n):
        node = delayed(inc)(node)
    return node


def fan_in(n):
    return delayed(total)([delayed(inc)(i) for i in range(n)])


def lattice(width, depth):
    row = [delayed(inc)(i) for i in range(width)]
    for _ in range(1, depth):
        row = [delayed(add)(row[i], row[(i + 1) % width]) for i in range(width)]
    return delayed(total)(row)


# name, builder, tasks, whether --quick keeps it
SHAPES = [
    ("chain 500", lambda: chain(500), 500, True),
    ("chain 10k", lambda: chain(10_000), 10_000, False),
    ("fan-in 10k", lambda: fan_in(10_000), 10_001, True),
    ("lattice 30x30", lambda: lattice(30, 30), 901, True),
    ("lattice 100x100", lambda: lattice(100, 100), 10_001, False),
]


def timed(run):
    """Seconds that `run()` takes, median of ROUNDS."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2]


def main():
    quick = "--quick" in sys.argv[1:]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))
    print(f"dask {dask.__version__}, median of {ROUNDS}, us per task\n")
    print(
        "| shape | built + computed, threads | built + computed, sync "
        "| compute alone, threads | compute alone, sync |"
    )
    print("|---|---|---|---|---|")
    for name, build, tasks, in_quick in SHAPES:
        if quick and not in_quick:
            continue
        root = build()
        cells = [
            # Built and computed: what benches/overhead.rs times for delayed.
            timed(lambda: dask.compute(build(), scheduler="threads")),
            timed(lambda: dask.compute(build(), scheduler="sync")),
            # Compute alone, of the root built above.
            timed(lambda: dask.compute(root, scheduler="threads")),
            timed(lambda: dask.compute(root, scheduler="sync")),
        ]
        row = " | ".join(f"{seconds / tasks * 1e6:,.1f}" for seconds in cells)
        print(f"| {name} | {row} |", flush=True)


if __name__ == "__main__":
    main()
