"""The shapes of benches/cluster.rs on dask.distributed's LocalCluster.

    pip install dask distributed
    python3 benches/dask_cluster.py           # the full shapes
    python3 benches/dask_cluster.py --quick   # smaller shapes
    python3 benches/dask_cluster.py throughput  # the throughput shape only

Prints the same tables as the Rust bench: per-task overhead of empty
tasks with one worker of one thread, throughput of 50 ms tasks as workers
of one thread are added, and a SIGKILL of one of four worker processes
3 s into a run.
"""

import os
import signal
import sys
import threading
import time

try:
    from dask.distributed import Client, LocalCluster
except ImportError:
    sys.exit("dask.distributed is not installed: pip install dask distributed")


def empty(i):
    return i


def nap(i):
    time.sleep(0.05)
    return i * 2


def overhead(tasks):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster, Client(
        cluster
    ) as client:
        client.submit(empty, -1).result()
        start = time.perf_counter()
        for i in range(tasks):
            client.submit(empty, i, pure=False).result()
        one_by_one = time.perf_counter() - start
        start = time.perf_counter()
        client.gather(client.map(empty, range(tasks), pure=False))
        together = time.perf_counter() - start
    print(f"\nper-task overhead, {tasks} empty tasks, LocalCluster, 1 worker of 1 thread:\n")
    print("| measure | ms per task |")
    print("|---|---|")
    print(f"| one task at a time (latency) | {one_by_one * 1e3 / tasks:.3f} |")
    print(f"| all tasks at once (throughput) | {together * 1e3 / tasks:.3f} |")


def throughput(tasks, one_by_one):
    """The `throughput` shape of benches/cluster.rs: one worker process."""
    with LocalCluster(n_workers=1, threads_per_worker=4, processes=True) as cluster, Client(
        cluster
    ) as client:
        client.submit(empty, -1).result()
        start = time.perf_counter()
        client.gather(client.map(empty, range(tasks), pure=False))
        together = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(one_by_one):
            client.submit(empty, i, pure=False).result()
        each = time.perf_counter() - start
    print(f"\n{tasks} empty tasks from one client, one worker process of 4 threads:\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| tasks/s, all at once | {tasks / together:.0f} |")
    print(f"| round trip, {one_by_one} tasks awaited one by one | {each * 1e3 / one_by_one:.3f} ms |")


def scaling(tasks, counts):
    print(f"\n{tasks} tasks of 50 ms, workers of 1 thread:\n")
    print("| workers | makespan | tasks/s | speed-up | of linear |")
    print("|---|---|---|---|---|")
    base = None
    for count in counts:
        with LocalCluster(
            n_workers=count, threads_per_worker=1, processes=True
        ) as cluster, Client(cluster) as client:
            client.wait_for_workers(count)
            start = time.perf_counter()
            out = client.gather(client.map(nap, range(tasks), pure=False))
            elapsed = time.perf_counter() - start
            assert out == [i * 2 for i in range(tasks)]
        rate = tasks / elapsed
        base = base or rate
        speedup = rate / base
        print(f"| {count} | {elapsed:.2f}s | {rate:.1f} | {speedup:.2f}x | {speedup / count:.2f} |")


def kill_one(tasks):
    with LocalCluster(n_workers=4, threads_per_worker=1, processes=True) as cluster, Client(
        cluster
    ) as client:
        client.wait_for_workers(4)
        pids = list(client.run(os.getpid).values())
        start = time.perf_counter()
        futures = client.map(nap, range(tasks), pure=False)
        timer = threading.Timer(3.0, lambda: os.kill(pids[0], signal.SIGKILL))
        timer.start()
        out = client.gather(futures)
        elapsed = time.perf_counter() - start
        timer.cancel()
    lost = sum(1 for i, v in enumerate(out) if v != i * 2)
    print(f"\nSIGKILL of 1 of 4 worker processes 3 s into {tasks} tasks of 50 ms:\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| results wrong or missing | {lost} |")
    print(f"| makespan | {elapsed:.2f}s |")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    if "throughput" in sys.argv:
        throughput(2000 if quick else 10000, 200 if quick else 1000)
        sys.exit(0)
    overhead(200 if quick else 1000)
    if quick:
        scaling(200, [1, 2, 4])
        kill_one(400)
    else:
        scaling(2000, [1, 2, 4, 8])
        kill_one(1000)
