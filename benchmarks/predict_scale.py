"""MC prediction at scale: a synthetic 1,000,000-image 28x28 HDF5 on disk, `predict --mc 100` with the cnn.

Measures images per second and peak resident memory for a 100,000-image slice and for a larger share of
the file (all of it with --fraction 1; the default 0.3 keeps the run near 10 minutes on 2 cores), and the
speed-up of 2 processes (torchrun) on the slice. Each size runs in a fresh process so that its peak memory
is its own. The file goes to a scratch folder (not the repository). Target: flat memory, under 1.5 GB.
Run: .venv/bin/python benchmarks/predict_scale.py [--images 1000000] [--fraction 0.3] [--scratch DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from _common import write_result

CHILD = """
import json, resource, sys, time
import numpy as np, knowwhen as kw
run, data, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ds = kw.open_dataset(data)
ds = ds.subset(np.arange(n)) if n < len(ds) else ds
start = time.perf_counter()
options = kw.PredictOptions(mc=100, batch_size=512, part_size=50_000, progress=False)
kw.write_predictions(kw.load_run(run), ds, out, options)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_file(path: Path, n: int) -> None:
    """Random uint8 images and labels, written beside `path` and renamed when complete."""
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        x = f.create_dataset("x", (n, 28, 28), dtype=np.uint8, chunks=(1024, 28, 28))
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            x[start:stop] = rng.integers(0, 256, (stop - start, 28, 28), dtype=np.uint8)
        f["y"] = rng.integers(0, 10, n)
    tmp.replace(path)


def make_run(scratch: Path) -> Path:
    import knowwhen as kw

    cfg = kw.TrainConfig(kw.DataConfig("digits"), kw.ModelConfig("cnn"), epochs=1, progress=False)
    data = kw.open_dataset("fashion-mnist") if Path("/usr/share/datasets/fashion-mnist").exists() else None
    if data is not None:
        cfg = kw.TrainConfig(kw.DataConfig("fashion-mnist"), kw.ModelConfig("cnn"), epochs=1, progress=False,
                             max_minutes=1.0)
    return kw.train(cfg, scratch / "run", overwrite=True)


def child(run: Path, data: Path, n: int, out: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(run), str(data), str(n), str(out)], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=1_000_000)
    p.add_argument("--slice", type=int, default=100_000)
    p.add_argument("--fraction", type=float, default=0.3)
    p.add_argument("--scratch", default=None)
    args = p.parse_args()
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="kw-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    data = scratch / "synthetic.h5"
    if not data.exists():
        t = time.perf_counter()
        make_file(data, args.images)
        print(f"wrote {data} ({data.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
    run = make_run(scratch)
    large = int(args.images * args.fraction)
    sizes = {}
    for n in (args.slice, large):
        m = child(run, data, n, scratch / f"pred-{n}.csv")
        sizes[str(n)] = {"images": n, "seconds": round(m["seconds"], 1),
                         "images_per_second": round(n / m["seconds"], 1), "peak_rss_mb": round(m["peak_rss_mb"])}
        print(sizes[str(n)])
    # Whole commands, one process vs two (torchrun), on a file holding just the slice.
    slice_file = scratch / "slice.h5"
    if not slice_file.exists():
        make_file(slice_file, args.slice)
    cli = [str(run), str(slice_file), "--mc", "100", "--part-size", "25000", "--quiet"]
    torchrun = Path(sys.executable).with_name("torchrun")
    timing = {}
    for name, launcher in (("one", [sys.executable, "-m", "knowwhen"]),
                           ("two", [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "knowwhen"])):
        start = time.perf_counter()
        subprocess.run(launcher + ["predict"] + cli + ["--out", str(scratch / f"slice-{name}.csv")], check=True,
                       capture_output=True)
        timing[name] = time.perf_counter() - start
    identical = (scratch / "slice-one.csv").read_bytes() == (scratch / "slice-two.csv").read_bytes()
    write_result("predict_scale", {
        "file_images": args.images, "model": "cnn", "mc_passes": 100, "sizes": sizes,
        "memory_flat": abs(sizes[str(large)]["peak_rss_mb"] - sizes[str(args.slice)]["peak_rss_mb"]) < 200,
        "target_peak_rss_mb": 1500,
        "meets_memory_target": max(s["peak_rss_mb"] for s in sizes.values()) < 1500,
        "slice_command_seconds": {"one_process": round(timing["one"], 1), "two_processes": round(timing["two"], 1)},
        "speed_up_two_processes": round(timing["one"] / timing["two"], 2),
        "two_process_output_identical": identical,
        "note": "2 processes on a 2-core machine share the cores that one process already uses through torch's "
                "2 threads, so little speed-up is expected here; on a machine with more cores or GPUs each "
                "rank brings its own.",
    })


if __name__ == "__main__":
    main()
