"""The overhead shapes of benches/overhead.rs, run with dask.delayed.

    pip install dask
    python3 benches/dask_compare.py

Prints ns/node (build + compute) for each shape with dask's threaded and
synchronous schedulers, in the same table form as the Rust bench, so the
two can be read side by side. The shapes are smaller than the Rust ones
where dask would take minutes; per-node cost is what is compared.
"""

import sys
import time

try:
    import dask
    from dask import delayed
except ImportError:
    sys.exit("dask is not installed: pip install dask")


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


SHAPES = [
    # dask recurses through a chain while building its graph, so it is kept
    # short enough for Python's recursion limit.
    ("chain 500", lambda: chain(500), 500),
    ("fan-in 10k", lambda: fan_in(10_000), 10_001),
    ("lattice 30x30", lambda: lattice(30, 30), 901),
]


def measure(build, scheduler, rounds=5):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        dask.compute(build(), scheduler=scheduler)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2]


def main():
    print(f"dask {dask.__version__}, median of 5, ns/node (build + compute)\n")
    print("| shape | threads | sync |")
    print("|---|---|---|")
    for name, build, nodes in SHAPES:
        threaded = measure(build, "threads") / nodes * 1e9
        sync = measure(build, "sync") / nodes * 1e9
        print(f"| {name} | {threaded:,.0f} | {sync:,.0f} |")


if __name__ == "__main__":
    main()
