"""The ``factory`` command line: parses arguments and calls stages, nothing else."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .core.errors import BuildFailedError, ConfigError, FactoryError, Interrupted

if TYPE_CHECKING:
    from .locks.lockfile import Lock

if TYPE_CHECKING:
    from .core.registry import Registry

VERIFY_CACHE_HELP = "re-hash every cached file it reuses, not only those changed since they were checked"
LOCK_COMMANDS = ("validate", "plan", "wheelhouse", "images", "smoke", "all")
RELEASE_COMMANDS = ("promote", "rollback", "releases", "sign", "verify", "publish")
HELP = "Wheelhouse build and container image factory for Python 3.14."


LANE_HELP = "wheel ABI lane: cp314 (default) or cp314t, the free-threaded lane (default: [tool.factory] abi)"


def _image_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("--lock", help="lock file (default: [tool.factory] lock)")
    s.add_argument("--wheelhouse", help="wheelhouse directory (default: wheelhouse; wheelhouse-cp314t in the free-threaded lane)")
    s.add_argument("--images-lock", help="images lock (default: images.lock; images-cp314t.lock in the free-threaded lane)")
    s.add_argument("--abi", help=LANE_HELP)
    s.add_argument("--strict", action="store_true", help="fail on a perf regression against the previous images.lock")
    s.add_argument("--oci-layout", metavar="DIR", help="also write the index and its images as an OCI image layout in DIR (skopeo, oras and docker load read it)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="factory", description=HELP)
    p.add_argument(
        "--config",
        help="pyproject.toml with [tool.factory] (default: ./pyproject.toml if present, else the built-in defaults)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("validate", help="validate a lock (requirements, PEP 751 pylock.toml, uv.lock, poetry.lock, pdm.lock)")
    s.add_argument("--lock", help="lock file (default: [tool.factory] lock)")
    s.add_argument("--abi", help=LANE_HELP)

    s = sub.add_parser("lock", help="pip-compile requirements.in into a hashed lock, under CPython 3.14")
    s.add_argument("--in", dest="source", help="input (default: requirements.in beside the lock)")
    s.add_argument("--out", "--lock", dest="out", help="output lock (default: [tool.factory] lock)")
    s.add_argument("--toolchain", action="store_true", help="recompile the toolchain lock ([tool.factory] toolchain) instead")

    s = sub.add_parser("wheelhouse", help="download the best wheel per pin × target into a wheelhouse")
    s.add_argument("--lock", help="lock file (default: [tool.factory] lock)")
    s.add_argument("--out", help="output directory (default: wheelhouse; wheelhouse-cp314t in the free-threaded lane)")
    s.add_argument("--abi", help=LANE_HELP)
    s.add_argument("--target", action="append", default=[], help="a target (repeatable; default: all configured)")
    s.add_argument("--allow-missing", action="store_true", help="report pins without wheels instead of building or failing")
    s.add_argument("--no-build", action="store_true", help="wheels-only lane: fail on pins without a wheel instead of building their sdists")
    s.add_argument("--verify-cache", action="store_true", help=VERIFY_CACHE_HELP)
    s.add_argument("--only", metavar="CELL", help="build this one cell (an id from `factory plan`) into the build cache; with --out, copy its wheel to OUT/<target>/")

    s = sub.add_parser("upgrade", help="propose the fewest, oldest pin upgrades that give every pin a wheel on every target (uv re-resolves)")
    s.add_argument("--lock", help="lock file, of any accepted format and any Python (default: [tool.factory] lock)")
    s.add_argument("--out", help="directory for upgrade.md, upgrade.json and the proposed lock (default: upgrade; upgrade-cp314t in the free-threaded lane)")
    s.add_argument("--abi", help=LANE_HELP)
    s.add_argument("--target", action="append", default=[], help="a target (repeatable; default: all configured)")
    s.add_argument("--write", action="store_true", help="also replace the lock with the proposed one")

    s = sub.add_parser("plan", help="list the cells to build (ids, targets, build cache keys) as JSON or a CI matrix")
    s.add_argument("--lock", help="lock file (default: [tool.factory] lock)")
    s.add_argument("--abi", help=LANE_HELP)
    s.add_argument("--target", action="append", default=[], help="a target (repeatable; default: all configured)")
    s.add_argument("--format", choices=["json", "github", "gitlab"], default="json", help="json (every cell), or a matrix of the cells left to build")

    sub.add_parser("bootstrap", help="bootstrap the base images and record them in bases.lock")

    _image_options(sub.add_parser("images", help="build, push and index the slim images"))

    s = sub.add_parser("smoke", help="smoke-test the images of an images.lock with testcontainers")
    s.add_argument("--images-lock", help="images lock (default: images.lock; images-cp314t.lock in the free-threaded lane)")
    s.add_argument("--abi", help=LANE_HELP)
    s.add_argument("--lock", help="the lock the images were built from (default: [tool.factory] lock)")

    s = sub.add_parser("report", help="print the readiness table and the images")
    s.add_argument("--wheelhouse", help="wheelhouse directory (default: wheelhouse; wheelhouse-cp314t in the free-threaded lane)")
    s.add_argument("--images-lock", help="images lock (default: images.lock; images-cp314t.lock in the free-threaded lane)")
    s.add_argument("--abi", help=LANE_HELP)
    s.add_argument("--baseline", help="the previous release's images.lock, for the go/no-go startup and RSS gates")
    s.add_argument("--out", help="also write the go/no-go checklist as report.json and report.md into this directory")

    s = sub.add_parser("all", help="validate, bootstrap, wheelhouse, images, smoke, report (make images)")
    _image_options(s)
    s.add_argument("--verify-cache", action="store_true", help=VERIFY_CACHE_HELP)

    s = sub.add_parser("registry", help="start/stop the loopback registry")
    s.add_argument("action", choices=["start", "stop", "status"])

    s = sub.add_parser("promote", help="point a tag (staging, prod, …) at the index digest of an images.lock")
    s.add_argument("--images-lock", default="images.lock")
    s.add_argument("--tag", required=True, help="the environment tag to move")
    s.add_argument("--history", help="release history file (default: releases.json beside the images.lock)")
    s.add_argument("--cache-dir", help="holds the history's run lock (default: $FACTORY_CACHE_DIR or the user cache dir)")

    s = sub.add_parser("rollback", help="point a tag back at its previous release, in one registry request")
    s.add_argument("--tag", required=True)
    s.add_argument("--images-lock", default="images.lock", help="locates the default history")
    s.add_argument("--history", help="release history file (default: releases.json beside the images.lock)")
    s.add_argument("--cache-dir", help="holds the history's run lock (default: $FACTORY_CACHE_DIR or the user cache dir)")

    s = sub.add_parser("releases", help="list the recorded moves of a tag")
    s.add_argument("--tag", required=True)
    s.add_argument("--images-lock", default="images.lock", help="locates the default history")
    s.add_argument("--history", help="release history file (default: releases.json beside the images.lock)")

    s = sub.add_parser("sign", help="sign and attest (cosign) the index and images of an images.lock")
    s.add_argument("--images-lock", default="images.lock")
    s.add_argument("--cache-dir", default=".cache/factory", help="where cosign and a generated key live (default: %(default)s)")

    s = sub.add_parser("verify", help="check an images.lock's signatures, attestations, digests and tags against the registry")
    s.add_argument("--images-lock", default="images.lock")
    s.add_argument("--key", help="the publisher's cosign public key (default: the one images.lock names)")
    s.add_argument("--cache-dir", default=".cache/factory", help="where cosign is installed (default: %(default)s)")

    s = sub.add_parser("publish", help="upload every target's wheels to a package index with an upload API (twine)")
    s.add_argument("--wheelhouse", default="wheelhouse")
    s.add_argument("--to", required=True, metavar="URL", help="an index's upload URL (pypiserver: http://host:port/), or oci://REGISTRY/NAME:TAG for an OCI artifact (oras)")
    s.add_argument("--cache-dir", default=".cache/factory", help="where oras is installed (default: %(default)s)")

    s = sub.add_parser("binfmt", help="check or install (root) QEMU 11.1 binfmt for aarch64")
    s.add_argument("--check", action="store_true", help="only check")
    return p


def _run(args: argparse.Namespace) -> int:
    if args.command in RELEASE_COMMANDS:  # consumers' commands: no project configuration needed
        _release(args)
        return 0
    from . import pipeline
    from .core import binfmt
    from .core.config import load_config
    from .core.progress import console
    from .report import print_summary, print_upgrade

    cfg = load_config(args.config)
    if getattr(args, "abi", None):
        cfg = cfg.with_abi(args.abi)
    if getattr(args, "verify_cache", False):
        cfg = replace(cfg, verify_cache=True)
    given_lock = getattr(args, "lock", None)
    lock_path = Path(given_lock).resolve() if given_lock else cfg.lock
    if not given_lock and args.command in LOCK_COMMANDS and not cfg.lock_explicit:
        lock_path = pipeline.find_lock(cfg)
        if lock_path.exists():
            console.print(f"lock: {lock_path.name} (found in {lock_path.parent})")

    def output(name: str, default: str) -> Path:
        """An output path given on the command line, else ``default`` in this lane."""
        given = getattr(args, name, None)
        return Path(given or cfg.lane_name(default)).resolve()

    def read_lock(path: Path) -> Lock:
        return pipeline.load_lock(cfg, path)

    if args.command == "validate":
        lock = read_lock(lock_path)
        exported = f" (a {lock.exported_by} lock, exported to {lock.path})" if lock.exported_from else ""
        console.print(f"{lock.exported_from or lock.path}: ok, {lock.format} lock{exported}, {len(lock.pins)} pins, sha256 {lock.sha256}")
    elif args.command == "lock":
        from .core.engine import Engine
        from .tools.pipcompile import compile_lock

        if args.toolchain and not args.out and "toolchain" in cfg.packaged:
            raise ConfigError(
                f"the toolchain lock is the one shipped with factory ({cfg.toolchain}); recompiling it would write into the installed package",
                "set toolchain in [tool.factory] to a lock of your own (with toolchain.in beside it), or pass --out",
            )
        out = Path(args.out).resolve() if args.out else (cfg.toolchain if args.toolchain else cfg.lock)
        source = Path(args.source).resolve() if args.source else out.with_suffix(".in")
        engine = Engine()
        base_ref = pipeline.runtime_bases(cfg, engine, pipeline.connect_registry(cfg))["amd64"].ref
        command = "factory lock --toolchain" if args.toolchain else "factory lock"
        lock = compile_lock(cfg, engine, pipeline.make_index(cfg), base_ref, source, out, command)
        console.print(f"{lock.path}: {len(lock.pins)} pins, sha256 {lock.sha256[:12]}")
    elif args.command == "upgrade":
        if args.target:
            cfg = cfg.with_targets(args.target)
        plan, proposed = pipeline.run_upgrade(cfg, lock_path, output("out", "upgrade"), args.write)
        print_upgrade(plan, console)
        if plan.lock.exported_from is not None and plan.changes:
            tool = {"uv": "uv lock --upgrade-package", "poetry": "poetry update", "pdm": "pdm update"}[plan.lock.exported_by]
            moves = " ".join(f"{c.name}=={c.new}" if plan.lock.exported_by == "uv" else c.name for c in plan.changes if c.new)
            console.print(f"to apply it to {plan.lock.exported_from.name}: set requires-python to admit {cfg.python}, then {tool} " + moves.replace(" ", f" {'--upgrade-package ' if plan.lock.exported_by == 'uv' else ''}"))
        console.print(f"proposed lock: {proposed}" + (f" (written to {plan.lock.path})" if args.write else " (the lock is unchanged; --write replaces it)"))
    elif args.command == "plan":
        from .sdist.matrix import render

        if args.target:
            cfg = cfg.with_targets(args.target)
        lock = read_lock(lock_path)
        print(render(pipeline.plan_cells(cfg, lock), args.format, lock.sha256, cfg.python))
    elif args.command == "wheelhouse" and args.only:
        if args.target:
            cfg = cfg.with_targets(args.target)
        outcome = pipeline.build_only(cfg, read_lock(lock_path), args.only, Path(args.out).resolve() if args.out else None)
        if not outcome.ok:
            raise BuildFailedError(f"{args.only}: {outcome.reason}", f"see {outcome.log}" if outcome.log else "see the readiness of a full run")
        console.print(f"{args.only}: {'cached' if outcome.cached else 'built'} {outcome.filename} sha256 {outcome.sha256} ({outcome.wheel})")
    elif args.command == "wheelhouse":
        if args.target:
            cfg = cfg.with_targets(args.target)
        result = pipeline.run_wheelhouse(cfg, read_lock(lock_path), output("out", "wheelhouse"), args.allow_missing, not args.no_build)
        if result.reused:
            console.print(f"{result.out}: current for this lock, reused without reading the index")
        for pin, target in result.missing:
            console.print(f"[yellow]missing[/yellow] {pin.name}=={pin.version} × {target.name}")
        print_summary(result.out, None)
    elif args.command == "bootstrap":
        for arch, base in pipeline.run_bootstrap(cfg).items():
            console.print(f"{arch}: {base.ref}")
    elif args.command == "images":
        images = pipeline.run_images(
            cfg, read_lock(lock_path), output("wheelhouse", "wheelhouse"), output("images_lock", "images.lock"), args.strict
        )
        console.print(f"index: {images.index}")
        if args.oci_layout:
            console.print(f"OCI image layout: {pipeline.write_oci_layout(cfg, images, Path(args.oci_layout).resolve())}")
    elif args.command == "smoke":
        pipeline.run_smoke(cfg, output("images_lock", "images.lock"), read_lock(lock_path))
    elif args.command == "report":
        wheelhouse = output("wheelhouse", "wheelhouse")
        failed = wheelhouse.parent / f"{wheelhouse.name}.failed"
        images_lock = output("images_lock", "images.lock")
        print_summary(failed if (failed / "readiness.json").exists() else wheelhouse, images_lock)
        if images_lock.exists() or args.out:
            from .gonogo import MARK, build_report

            smoke = cfg.smoke
            report = build_report(images_lock, wheelhouse, Path(args.baseline).resolve() if args.baseline else None,
                                  *((smoke.ready_regression, smoke.rss_regression) if smoke else ()))  # fmt: skip
            console.print(f"go/no-go: {'GO' if report.go else 'NO-GO'}")
            for item in report.items:
                console.print(f"  {MARK[item.result]} {item.title}: {item.evidence}", markup=False)
            if args.out:
                console.print(f"wrote {', '.join(str(p) for p in report.write(Path(args.out).resolve()))}")
    elif args.command == "all":
        pipeline.run_all(
            cfg, lock_path, output("wheelhouse", "wheelhouse"), output("images_lock", "images.lock"), args.strict,
            Path(args.oci_layout).resolve() if args.oci_layout else None,
        )  # fmt: skip
    elif args.command == "registry":
        reg = pipeline.local_registry(cfg)
        if args.action == "start":
            reg.start()
        elif args.action == "stop":
            reg.stop()
        from .core.registry import Registry

        console.print(f"registry {cfg.registry}: {'up' if Registry(cfg.registry).ping() else 'down'}")
    elif args.command == "binfmt":
        if args.check:
            st = binfmt.require_arm64()
            console.print(f"arm64 binfmt: {st.interpreter if st else 'native'} ({st.flags if st else ''})")
        else:
            console.print(f"arm64 binfmt registered: {binfmt.install(cfg.cache_dir)}")
    return 0


def _connect(address: str) -> Registry:
    from .core.engine import docker_login_credentials
    from .core.registry import Registry, credentials

    return Registry(address, credentials(address, docker_login=docker_login_credentials))


def _release(args: argparse.Namespace) -> None:
    from .core.progress import console
    from .release import rollout

    if args.command == "publish":
        from .core.registry import credentials
        from .release import publish

        wheelhouse = Path(args.wheelhouse).resolve()
        if args.to.startswith("oci://"):
            reference = args.to.removeprefix("oci://")
            oras = publish.install_oras(Path(args.cache_dir).resolve())
            digest = publish.publish_oci(wheelhouse, reference, oras, credentials(reference.partition("/")[0]))
            console.print(f"wheelhouse pushed as {reference.rpartition(':')[0]}@{digest}")
        else:
            wheels = publish.publish(wheelhouse, args.to)
            console.print(f"published {len(wheels)} wheels to {args.to}")
        return
    images_lock = Path(args.images_lock).resolve()
    if args.command in ("sign", "verify"):
        _signing(args, images_lock)
        return
    history = Path(args.history).resolve() if args.history else rollout.history_path(images_lock)
    if args.command == "promote":
        move = rollout.promote(_connect, images_lock, args.tag, history, lock_file=_history_lock(args, history))
        console.print(f"{args.tag}: already at the index of {images_lock.name}" if move is None else f"{args.tag} -> {move.ref}")
    elif args.command == "rollback":
        move = rollout.rollback(_connect, args.tag, history, lock_file=_history_lock(args, history))
        console.print(f"{args.tag} -> {move.ref} (rolled back)")
    else:
        for r in rollout.releases(args.tag, history):
            console.print(f"{r.time}  {r.action:8}  {r.ref}  images.lock {r.images_lock_sha256[:12]}")


def _history_lock(args: argparse.Namespace, history: Path) -> Path:
    """The release history's run lock, in the cache as the other run locks are."""
    import os

    import platformdirs

    from factory.pipeline import run_lock_file

    cache = args.cache_dir or os.environ.get("FACTORY_CACHE_DIR") or platformdirs.user_cache_dir("factory")
    return run_lock_file(Path(cache).resolve(), history)


def _signing(args: argparse.Namespace, images_lock: Path) -> None:
    import os

    from .bases.imagelock import ImagesLock
    from .core.progress import console
    from .core.registry import credentials
    from .release import cosign, signing

    ImagesLock.load(images_lock)  # a broken images.lock is named before cosign is installed
    cache_dir = Path(args.cache_dir).resolve()
    if args.command == "sign":
        data = signing.sign_with_cosign(cache_dir, images_lock)
        console.print(f"signed and attested {len(data['signing']['signatures'])} manifests; public key {data['signing']['public_key']}")
    else:
        # FACTORY_REGISTRY_USER/PASSWORD for cosign too; otherwise cosign reads `docker login`'s config itself
        address = signing.registry_of(images_lock)
        auth = credentials(address) if address else None
        tool = cosign.Cosign(cosign.install(cache_dir), auth=auth, password=os.environ.get("COSIGN_PASSWORD", ""))
        checked = signing.verify_images(tool, _connect, images_lock, Path(args.key).resolve() if args.key else None)
        console.print(f"{images_lock.name}: {len(checked)} signatures, attestations, digests and tags verified")


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit status 0 on success, the error's ``exit_code`` on a ``FactoryError``,
    130 on SIGINT, 143 on a SIGTERM that reached the sdist lane (``Interrupted``)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except FactoryError as e:
        print(f"factory: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # a full disk can strike any write (the cache's records, a builder's log); the outputs
        # are renamed into place only when complete, so nothing half-written is left
        where = f" writing {e.filename}" if e.filename else ""
        print(f"factory: error: no space left on the device{where} (fix: free space there, or point cache-dir and --out at a larger filesystem)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        code = e.exit_code if isinstance(e, Interrupted) else 128 + signal.SIGINT
        print(f"factory: {'terminated' if code == 128 + signal.SIGTERM else 'interrupted'}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
