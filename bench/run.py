"""`make bench`: side-by-side measurements on one lock, in one run (not a test).

Prints a Markdown report (and writes it to bench/last-run.md):

- wheelhouse: factory cold (empty cache) vs sequential `pip download` per target with the
  full correct tag list (what a user would script), factory warm (current wheelhouse) vs cold,
  on the lock's pins that have wheels everywhere (pip download cannot do the rest);
- sdist lane: per built cell, the build time from the wheelhouse manifest, the
  aarch64/x86_64 ratio per sdist and for the set, and cibuildwheel's step profile from the
  cached build logs (where the aarch64 time goes);
- sdist lane vs one plain cibuildwheel call per sdist (a tiny C sdist, four targets, same
  builders and compiler): factory cold and warm against the plain call;
- images: base and final sizes, unpacked and compressed, against python:3.14-slim
  (docker-library, amd64: 119.66 MB / 43.4 MB compressed);
- per arch: cold start (`python3 -c pass` in a fresh container) and the import time of the
  lock's top-level modules, median of N runs, and the aarch64/x86_64 ratio.

Needs `make images` to have run (it reads images.lock and the wheelhouse manifest).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACTORY = [sys.executable, "-m", "factory"]
SLIM_REFERENCE = (119.66e6, 43.4e6)  # python:3.14-slim amd64, docker-library: unpacked, compressed
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def commit() -> str:
    """The checkout's short commit (BENCHMARKS.md records one per figure), or ``unknown``."""
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def timed(cmd: list[str], **kw) -> float:
    start = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, **kw)
    return time.monotonic() - start


def wheels_only_lock(lock: Path, built: set[str], dest: Path) -> Path:
    """``lock`` without the pins the manifest says were built from sdists."""
    from factory.locks.lockfile import read_lock

    keep = [p for p in read_lock(lock).pins if p.name not in built]
    dest.write_text("".join(f"{p.name}=={p.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(p.hashes)) + "\n" for p in keep))
    return dest


def wheelhouse_section(lock: Path, targets: list) -> list[str]:
    from factory.core.config import load_config

    cfg = load_config(ROOT / "pyproject.toml")
    tmp = Path(tempfile.mkdtemp(prefix="factory-bench-"))
    manifest = json.loads((ROOT / "wheelhouse" / "manifest.json").read_text())
    built = {e["name"] for es in manifest["targets"].values() for e in es if e["source"] == "built"}
    try:
        lock = wheels_only_lock(lock, built, tmp / "wheels-only.lock")
        env = {**os.environ, "FACTORY_CACHE_DIR": str(tmp / "cache")}
        out = tmp / "wh"
        cold = timed([*FACTORY, "wheelhouse", "--lock", str(lock), "--out", str(out)], env=env, cwd=ROOT)
        warm = timed([*FACTORY, "wheelhouse", "--lock", str(lock), "--out", str(out)], env=env, cwd=ROOT)
        cached = timed([*FACTORY, "wheelhouse", "--lock", str(lock), "--out", str(tmp / "wh2")], env=env, cwd=ROOT)
        # issue 12's offline goal: a new output from the warm cache with the index on a dead port
        offline = timed(
            [*FACTORY, "wheelhouse", "--lock", str(lock), "--out", str(tmp / "wh3")], env={**env, "FACTORY_INDEX_URL": "http://127.0.0.1:9/simple/"}, cwd=ROOT
        )
        # What a user scripts by hand: one pip download per target, every platform tag spelled out.
        pip_total = 0.0
        pip_env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL")}
        for target in cfg.targets:
            plats = [a for p in target.platforms() for a in ("--platform", p)]
            pip_total += timed(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--only-binary", ":all:",
                 "--python-version", "3.14", "--implementation", "cp", "--abi", "cp314", "--abi", "abi3", "--abi", "none",
                 *plats, "--index-url", cfg.index_url, "--require-hashes", "-r", str(lock), "-d", str(tmp / "pip" / target.name)],
                env=pip_env,
            )
        files = sum(1 for _ in (tmp / "pip").rglob("*.whl"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        f"## Wheelhouse (example lock without the sdist-built {', '.join(sorted(built)) or 'none'}, 4 targets)",
        "",
        "| run | seconds | ratio |",
        "| --- | --- | --- |",
        f"| sequential `pip download` per target, full tag lists, no cache ({files} files) | {pip_total:.1f} | 1.00 |",
        f"| factory cold (empty cache) | {cold:.1f} | {cold / pip_total:.2f} |",
        f"| factory, new output, warm download cache | {cached:.1f} | {cached / pip_total:.2f} |",
        f"| factory, new output, warm cache, index unreachable (dead port) | {offline:.1f} | {offline / pip_total:.2f} |",
        f"| factory warm (wheelhouse current, no index read) | {warm:.1f} | {warm / pip_total:.3f} |",
        "",
        f"Warm vs cold: {warm / cold:.3f}.",
        "",
    ]


def best_of_table(title: str, baseline: tuple[str, list[float]], measured: tuple[str, list[float]], ratio: str) -> list[str]:
    """A report section: each run's seconds and the best of each, ``measured``'s best over ``baseline``'s."""
    (base_label, base_s), (label, runs_s) = baseline, measured
    joined = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    return [
        title,
        "",
        f"| run | runs (s) | best (s) | {ratio} |",
        "| --- | --- | --- | --- |",
        f"| {base_label} | {joined(base_s)} | {min(base_s):.1f} | 1.00 |",
        f"| {label} | {joined(runs_s)} | {min(runs_s):.1f} | {min(runs_s) / min(base_s):.2f} |",
        "",
    ]


UV_PLATFORMS = {
    "manylinux_2_28_x86_64": "x86_64-manylinux_2_28",
    "manylinux_2_28_aarch64": "aarch64-manylinux_2_28",
    "musllinux_1_2_x86_64": "x86_64-unknown-linux-musl",
    "musllinux_1_2_aarch64": "aarch64-unknown-linux-musl",
}


def fetch_section(lock: Path, targets: list) -> list[str]:
    """Cold fetch, side by side with uv as a user would script it: `uv pip install
    --python-platform … --only-binary :all: --no-deps --require-hashes --target` per target,
    one uv cache shared across targets; factory `wheelhouse --no-build` with an empty cache.
    Alternating runs, best of each, on the lock's pins that have wheels everywhere."""
    from factory.core.config import load_config

    cfg = load_config(ROOT / "pyproject.toml")
    tmp = Path(tempfile.mkdtemp(prefix="factory-bench-fetch-"))
    manifest = json.loads((ROOT / "wheelhouse" / "manifest.json").read_text())
    built = {e["name"] for es in manifest["targets"].values() for e in es if e["source"] == "built"}
    runs = int(os.environ.get("BENCH_FETCH_RUNS", "2"))
    uv = str(Path(sys.executable).parent / "uv")
    uv_env = {**os.environ, "SSL_CERT_FILE": str(cfg.ca_bundle or "")}
    factory_s, uv_s = [], []
    try:
        wheels = wheels_only_lock(lock, built, tmp / "wheels-only.lock")
        pins = sum(1 for line in wheels.read_text().splitlines() if line.strip())
        for _ in range(runs):
            shutil.rmtree(tmp / "c", ignore_errors=True)
            shutil.rmtree(tmp / "wh", ignore_errors=True)
            env = {**os.environ, "FACTORY_CACHE_DIR": str(tmp / "c")}
            factory_s.append(timed([*FACTORY, "wheelhouse", "--no-build", "--lock", str(wheels), "--out", str(tmp / "wh")], env=env, cwd=ROOT))
            shutil.rmtree(tmp / "uvc", ignore_errors=True)
            shutil.rmtree(tmp / "uvt", ignore_errors=True)
            start = time.monotonic()
            for target in targets:
                subprocess.run(
                    [uv, "pip", "install", "--no-config", "--native-tls", "--index-url", cfg.index_url,
                     "--python-platform", UV_PLATFORMS[target.name], "--python-version", "3.14", "--only-binary", ":all:",
                     "--no-deps", "--require-hashes", "--target", str(tmp / "uvt" / target.name), "--cache-dir", str(tmp / "uvc"),
                     "-r", str(wheels), "-q"],
                    check=True, capture_output=True, env=uv_env,
                )  # fmt: skip
            uv_s.append(time.monotonic() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    uv_version = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.split()[1]
    return best_of_table(
        f"## Cold fetch vs uv ({pins} pins with wheels everywhere, {len(targets)} targets, best of {runs} alternating runs)",
        (f"uv {uv_version} (`uv pip install --target` per target, shared cache)", uv_s),
        ("factory `wheelhouse --no-build`, empty cache", factory_s),
        "ratio to uv",
    )


def median_run(ref: str, arch: str, code: str) -> float:
    samples = []
    for _ in range(RUNS):
        samples.append(timed(["docker", "run", "--rm", "--platform", f"linux/{arch}", ref, "python3", "-c", code]))
    return statistics.median(samples)


def import_seconds(ref: str, arch: str, modules: list[str]) -> float:
    code = f"import time,importlib;t=time.perf_counter();[importlib.import_module(m) for m in {modules!r}];print(time.perf_counter()-t)"
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(["docker", "run", "--rm", "--platform", f"linux/{arch}", ref, "python3", "-c", code],
                             check=True, capture_output=True, text=True).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples)


def top_level_modules(ref: str, arch: str) -> list[str]:
    code = (
        "import importlib.metadata as md\n"
        "mods=set()\n"
        "for d in md.distributions():\n"
        "    t=d.read_text('top_level.txt')\n"
        "    mods.update(x for x in (t or '').split() if x.isidentifier() and not x.startswith('_'))\n"
        "print(' '.join(sorted(mods)))"
    )
    out = subprocess.run(["docker", "run", "--rm", "--platform", f"linux/{arch}", ref, "python3", "-c", code],
                         check=True, capture_output=True, text=True).stdout
    return out.split()


def images_section(images_lock: Path) -> list[str]:
    data = json.loads(images_lock.read_text())
    mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
    lines = [
        "## Images",
        "",
        "| image | unpacked | compressed |",
        "| --- | --- | --- |",
        f"| python:3.14-slim (docker-library, amd64, reference) | {mb(SLIM_REFERENCE[0])} | {mb(SLIM_REFERENCE[1])} |",
    ]
    for i in data["images"]:
        lines.append(f"| factory base {i['arch']} | {mb(i['base_size'])} | {mb(i['base_compressed_size'])} |")
    for i in data["images"]:
        lines.append(f"| factory final {i['arch']} (example lock) | {mb(i['size'])} | {mb(i['compressed_size'])} |")
    lines += ["", f"## Start-up (median of {RUNS} fresh containers)", "", "| arch | cold start `python3 -c pass` (s) | import of top-level modules (s) |", "| --- | --- | --- |"]
    results = {}
    for i in data["images"]:
        mods = top_level_modules(i["ref"], i["arch"])
        results[i["arch"]] = (median_run(i["ref"], i["arch"], "pass"), import_seconds(i["ref"], i["arch"], mods))
        lines.append(f"| {i['arch']} | {results[i['arch']][0]:.2f} | {results[i['arch']][1]:.3f} |")
    if {"amd64", "arm64"} <= set(results):
        lines += [
            "",
            f"aarch64 / x86_64 (QEMU 11.1 user-mode emulation): cold start {results['arm64'][0] / results['amd64'][0]:.1f}×, "
            f"imports {results['arm64'][1] / results['amd64'][1]:.1f}×.",
        ]
    return [*lines, ""]


STEPS = ("Setting up build environment", "Building wheel", "Repairing wheel")


def step_profile(log: Path) -> dict[str, float]:
    """Seconds per cibuildwheel step, from the ``✓ N.NNs`` line that closes each step."""
    import re

    out: dict[str, float] = {}
    current = None
    for line in log.read_text(errors="replace").splitlines():
        for step in STEPS:
            if line.startswith(step):
                current = step
        m = re.search(r"✓ ([0-9.]+)s\s*$", line)
        if m and current:
            out[current] = float(m.group(1))
            current = None
    return out


def sdist_section(cfg) -> list[str]:
    manifest = json.loads((ROOT / "wheelhouse" / "manifest.json").read_text())
    cells: dict[str, dict[str, dict]] = {}
    for target, entries in manifest["targets"].items():
        for e in entries:
            if e["source"] == "built":
                cells.setdefault(e["name"], {})[target] = e
    if not cells:
        return []
    targets = [t.name for t in cfg.targets]
    lines = ["## sdist lane (cold builds recorded in the wheelhouse manifest)", "",
             "| sdist | " + " | ".join(targets) + " | aarch64 / x86_64 |", "| --- |" + " --- |" * (len(targets) + 1)]
    totals = {"x86_64": 0.0, "aarch64": 0.0}
    for name, by_target in sorted(cells.items()):
        row = [f"{by_target[t]['build_seconds']:.1f} s" if t in by_target else "index wheel" for t in targets]
        ratios = []
        for libc in ("manylinux", "musllinux"):
            x = next((e for t, e in by_target.items() if t.startswith(libc) and t.endswith("x86_64")), None)
            a = next((e for t, e in by_target.items() if t.startswith(libc) and t.endswith("aarch64")), None)
            if x and a:
                ratios.append(f"{libc} {a['build_seconds'] / x['build_seconds']:.2f}×")
                totals["x86_64"] += x["build_seconds"]
                totals["aarch64"] += a["build_seconds"]
        lines.append(f"| {name} | " + " | ".join(row) + f" | {', '.join(ratios)} |")
    if totals["x86_64"]:
        lines += ["", f"Whole set, cells built on both arches: x86_64 {totals['x86_64']:.0f} s, aarch64 {totals['aarch64']:.0f} s, "
                  f"ratio {totals['aarch64'] / totals['x86_64']:.2f}×.", ""]
    lines += ["Where the time goes (cibuildwheel's own step timings, from the cached build logs):", "",
              "| sdist | target | " + " | ".join(STEPS) + " |", "| --- | --- |" + " --- |" * len(STEPS)]
    newest: dict[tuple[str, str], Path] = {}  # the newest build of each cell (older keys may remain)
    for outcome in sorted(cfg.cache_dir.glob("builds/*/outcome.json"), key=lambda p: p.stat().st_mtime):
        data = json.loads(outcome.read_text())
        if data["name"] in cells and data["target"] in cells[data["name"]] and cells[data["name"]][data["target"]]["sha256"] == data["sha256"]:
            newest[(data["name"], data["target"])] = outcome.parent / "build.log"
    for (name, target), log in sorted(newest.items()):
        prof = step_profile(log)
        lines.append(f"| {name} | {target} | " + " | ".join(f"{prof.get(s, 0):.1f} s" for s in STEPS) + " |")
    return [*lines, ""]


def _plain_cibuildwheel(cfg, sdist: Path, cache: Path, out: Path) -> float:
    """One cibuildwheel call over the four targets of ``sdist``, as a user would script it,
    with the same builders, compiler (the mounted zig), build dependencies and options as the
    factory's calls: per-target values go into ``[[tool.cibuildwheel.overrides]]``. Seconds."""
    from factory.bases.imagelock import BuilderImagesLock
    from factory.core import resources
    from factory.sdist.cibw import CONFIG_FILE, RESOURCE_DIR, Mounts, cibuildwheel_env, sdist_epoch

    builders = BuilderImagesLock.load(cfg.builders_lock).builders
    zig = next((cache / "zig").glob("*/zig/zig")).parent.parent
    config = [resources.path(CONFIG_FILE).read_text()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    mounts: list[str] = []
    builds = []
    for target in cfg.targets:
        arch = target.docker_arch
        deps = next((cache / "builddeps" / f"manylinux_2_28_{target.arch}").glob("*/constraints.txt")).parent
        e = cibuildwheel_env(
            cfg.python, target, builders[arch].ref, Mounts(deps, zig, cache / "zig-cache", resources.path(RESOURCE_DIR)), sdist_epoch(sdist)
        )
        builds.append(e["CIBW_BUILD"])
        env.update({k: v for k, v in e.items() if k.endswith("_IMAGE")})
        deps_at = f"/opt/factory/deps-{target.arch}"
        config += [
            "[[tool.cibuildwheel.overrides]]",
            f"select = {json.dumps(e['CIBW_BUILD'])}",
            f"environment = {json.dumps(e['CIBW_ENVIRONMENT'].replace('/opt/factory/deps', deps_at))}",
            f"repair-wheel-command = {json.dumps(e['CIBW_REPAIR_WHEEL_COMMAND'])}",
        ]
        for arg in e["CIBW_CONTAINER_ENGINE"].split("create_args: ", 1)[1].split():
            arg = arg.replace(":/opt/factory/deps:", f":{deps_at}:")
            if arg not in mounts:
                mounts.append(arg)
    (out.parent / "cibuildwheel.toml").write_text("\n".join(config) + "\n")
    env["CIBW_BUILD"] = " ".join(builds)
    env["CIBW_CONTAINER_ENGINE"] = "docker; disable_host_mount: true; create_args: " + " ".join(mounts)
    cmd = [sys.executable, "-m", "cibuildwheel", str(sdist), "--platform", "linux", "--archs", "x86_64,aarch64",
           "--output-dir", str(out), "--config-file", str(out.parent / "cibuildwheel.toml")]
    start = time.monotonic()
    with open(out.parent / "cibuildwheel.log", "wb") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out.parent)
    return time.monotonic() - start


def cibuildwheel_section(cfg) -> list[str]:
    """The sdist lane against one plain cibuildwheel call per sdist, on a tiny C sdist for the
    four targets: factory cold (empty build cache), factory warm, and the plain call, side by
    side. A warm-up build of another version of the sdist first brings the builders, the
    build dependencies and zig's libc cache up to date for all three."""
    sys.path.insert(0, str(ROOT / "tests"))
    from indexserver import FixtureIndex, make_sdist, sha256
    from tinysrc import C_SOURCE, c_project

    sdists = {v: make_sdist("benchc", v, c_project("benchc", "_tinyc", C_SOURCE)) for v in ("0.9", "1.0")}
    tmp = Path(tempfile.mkdtemp(prefix="factory-bench-cibw-"))
    cache = tmp / "cache"
    (cache / "zig-cache").mkdir(parents=True)
    for v, data in sdists.items():
        (tmp / f"benchc-{v}.lock").write_text(f"benchc=={v} --hash=sha256:{sha256(data)}\n")
        (tmp / f"benchc-{v}.tar.gz").write_bytes(data)
    projects = {"benchc": {f"benchc-{v}.tar.gz": data for v, data in sdists.items()}}
    with FixtureIndex(projects, upstream=cfg.index_url) as idx:
        env = {**os.environ, "FACTORY_CACHE_DIR": str(cache), "FACTORY_INDEX_URL": idx.url}

        def wheelhouse(version: str, out: str) -> float:
            return timed([*FACTORY, "wheelhouse", "--lock", str(tmp / f"benchc-{version}.lock"), "--out", str(tmp / out)], env=env, cwd=ROOT)

        wheelhouse("0.9", "warmup")
        cold = wheelhouse("1.0", "wh")
        warm = wheelhouse("1.0", "wh")
    (tmp / "plain").mkdir()
    plain = _plain_cibuildwheel(cfg, tmp / "benchc-1.0.tar.gz", cache, tmp / "plain" / "out")
    factory_wheels = {p.name: sha256(p.read_bytes()) for p in tmp.glob("wh/*/*.whl")}
    plain_wheels = {p.name: sha256(p.read_bytes()) for p in (tmp / "plain" / "out").glob("*.whl")}
    same = factory_wheels == plain_wheels
    shutil.rmtree(tmp, ignore_errors=True)
    return [
        "## sdist lane vs one cibuildwheel call per sdist (tiny C sdist, 4 targets)", "",
        "| run | seconds | ratio |", "| --- | --- | --- |",
        f"| one plain cibuildwheel call (4 identifiers; same builders, zig, build deps) | {plain:.1f} | 1.00 |",
        f"| factory cold (empty build cache: 4 cibuildwheel calls, verification, import checks) | {cold:.1f} | {cold / plain:.2f} |",
        f"| factory warm (build cache current) | {warm:.1f} | {warm / plain:.3f} |", "",
        f"Same {len(plain_wheels)} wheels, byte for byte: {'yes' if same else 'no'}.", "",
    ]


def assembly_section(cfg) -> list[str]:
    """The app image of each arch built both ways, engine layer cache off: on the host
    (`image-assembly = host`: pypa/installer, pycs by the native base, the layer tar,
    config and manifest pushed through the registry API, no engine build) and
    with the Dockerfile (`pip install` and compileall in the image's arch, arm64 under
    QEMU). Pushed to a repository of its own (`<repository>-bench`), so the run's tags stay."""
    import dataclasses

    from factory.bases.bootstrap import read_bases_lock
    from factory.core.cache import sha256_file
    from factory.core.engine import Engine
    from factory.images import assemble as images_stage
    from factory.locks.lockfile import read_lock
    from factory.pipeline import connect_registry, make_index
    from factory.tools.toolchain import tool_wheel

    bases = read_bases_lock(cfg.bases_lock)
    lock = read_lock(cfg.lock)
    pip = tool_wheel(cfg, make_index(cfg, lock), "pip")
    registry, engine = connect_registry(cfg), Engine()
    seconds: dict[tuple[str, str], float] = {}
    for route in ("host", "dockerfile"):
        run_cfg = dataclasses.replace(cfg, engine_cache=False, image_assembly=route, repository=f"{cfg.repository}-bench")
        for arch in ("amd64", "arm64"):
            native = images_stage.native_base(run_cfg, bases, arch)
            started = time.monotonic()
            images_stage.build_image(run_cfg, engine, registry, lock, ROOT / "wheelhouse", bases[arch], pip, sha256_file(cfg.toolchain), "bench", native)
            seconds[(route, arch)] = time.monotonic() - started
    lines = [
        "## Image assembly (build and push of the app image, then pulled by the engine; engine layer cache off)",
        "",
        "| route | amd64 (s) | arm64 (s) | arm64 / amd64 |",
        "| --- | --- | --- | --- |",
    ]
    for route, label in (("host", "on the host (pypa/installer, native pycs, pushed through the registry API)"), ("dockerfile", "Dockerfile (pip + compileall in the arch; arm64 under QEMU)")):
        a, b = seconds[(route, "amd64")], seconds[(route, "arm64")]
        lines.append(f"| {label} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    lines += ["", f"arm64 image, host / Dockerfile route: {seconds[('host', 'arm64')] / seconds[('dockerfile', 'arm64')]:.2f}", ""]
    return lines


def bootstrap_section(cfg) -> list[str]:
    """`factory bootstrap` of both arches from an empty cache (packages downloaded, verified
    and unpacked, the side effects redone on the host, both images built and pushed) against
    one native amd64 `mmdebstrap` of the same recipe packages (`--variant=essential`: the
    smallest set whose maintainer scripts dpkg can run), also downloading. Alternating runs,
    best of each (issue 12's first goal: <= 2x)."""
    recipe = cfg.base("amd64").recipe
    runs = int(os.environ.get("BENCH_BOOTSTRAP_RUNS", "2"))
    tmp = Path(tempfile.mkdtemp(prefix="factory-bench-bootstrap-"))
    factory_s, native_s = [], []
    try:
        for _ in range(runs):
            shutil.rmtree(tmp / "c", ignore_errors=True)
            # a bases.lock of its own: with the checkout's, the recorded bases would be reused as they are
            env = {**os.environ, "FACTORY_CACHE_DIR": str(tmp / "c"), "FACTORY_BASES_LOCK": str(tmp / "c" / "bases.lock")}
            factory_s.append(timed([*FACTORY, "bootstrap"], env=env, cwd=ROOT))
            (tmp / "native.tar").unlink(missing_ok=True)
            native_s.append(timed([
                "mmdebstrap", "--variant=essential", "--arch=amd64", f"--include={','.join(recipe.packages)}",
                "--aptopt=Acquire::Check-Valid-Until \"false\"", recipe.suite, str(tmp / "native.tar"), recipe.mirror,
            ]))  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return best_of_table(
        f"## Bootstrap of the runtime base (best of {runs} alternating runs, empty caches)",
        (f"one native amd64 `mmdebstrap --variant=essential` of the recipe's {len(recipe.packages)} packages", native_s),
        ("`factory bootstrap`, amd64 and arm64 (extract route, images built and pushed)", factory_s),
        "ratio",
    )


# Each section by name; BENCH_SECTIONS=bootstrap,fetch runs only those (default: all, in order).
SECTIONS = ("bootstrap", "wheelhouse", "fetch", "sdist", "cibuildwheel", "images", "assembly")


def main() -> int:
    from factory.core.config import load_config

    cfg = load_config(ROOT / "pyproject.toml")
    images_lock = ROOT / "images.lock"
    if not images_lock.exists():
        print("bench: images.lock not found (fix: run `make images` first)", file=sys.stderr)
        return 2
    header = [
        "# factory benchmark run",
        "",
        f"Date {date.today().isoformat()}; machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; lock {cfg.lock.name}; commit {commit()}.",
        "",
    ]
    run = {
        "bootstrap": lambda: bootstrap_section(cfg),
        "wheelhouse": lambda: wheelhouse_section(cfg.lock, list(cfg.targets)),
        "fetch": lambda: fetch_section(cfg.lock, list(cfg.targets)),
        "sdist": lambda: sdist_section(cfg),
        "cibuildwheel": lambda: cibuildwheel_section(cfg),
        "images": lambda: images_section(images_lock),
        "assembly": lambda: assembly_section(cfg),
    }
    chosen = [s for s in os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)).split(",") if s]
    unknown = [s for s in chosen if s not in run]
    if unknown:
        print(f"bench: unknown section {unknown[0]!r} in BENCH_SECTIONS (fix: choose from {', '.join(SECTIONS)})", file=sys.stderr)
        return 2
    report = header + [line for name in chosen for line in run[name]()]
    text = "\n".join(report) + "\n"
    (ROOT / "bench" / "last-run.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
