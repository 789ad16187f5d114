"""`serve` (the web app and /v1 on one port), `bench` (side-by-side measurements) and
`space` (the folder to push to Hugging Face Spaces)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.cli.common import progress
from assistant.settings import Settings

# The repository root: the benches live there (bench/), beside the product.
ROOT = Path(__file__).resolve().parents[2]


def add_commands(sub) -> None:
    sub.add_parser("serve", help="serve the web app").set_defaults(func=cmd_serve)

    bench = sub.add_parser(
        "bench",
        help="measure side by side: asr, text, rag, router, vision, image, pool, scale, load",
    )
    bench.add_argument("name", nargs="?", help="one bench; all when omitted")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--repeats", type=int, default=3, help="runs per contender (median)")
    bench.add_argument("--users", type=int, default=16, help="load: simulated users at once")
    bench.add_argument("--seconds", type=float, default=180.0, help="load: length of a phase")
    bench.add_argument("--burst", type=int, default=100, help="load: requests sent at once")
    bench.set_defaults(func=cmd_bench)

    space = sub.add_parser("space", help="Hugging Face Spaces: export the folder to push")
    space.add_argument("action", choices=["export"])
    space.add_argument("dir", type=Path, help="a new (or empty) folder")
    space.set_defaults(func=cmd_space)


def cmd_serve(args, settings: Settings) -> int:
    from assistant.web.server import serve

    try:
        serve(settings)
    except KeyboardInterrupt:  # Ctrl-C while the models and the app were still being set up
        print("Stopped.", file=sys.stderr)
    return 0


def cmd_bench(args, settings: Settings) -> int:
    # The benches live beside the product (bench/ in the repository), not in
    # it: a Space export or a copy of assistant/ alone has none to run.
    sys.path.insert(0, str(ROOT))
    try:
        from bench import runner as bench
    except ModuleNotFoundError as exc:
        print(f"No benches here ({exc}): run this from a clone of the repository.", file=sys.stderr)
        return 2

    settings.ensure_home()
    names = [args.name] if args.name else list(bench.DEFAULT)
    # Only `bench load` takes the load's shape; the others measure fixed sets.
    options = {"users": args.users, "seconds": args.seconds, "bursts": args.burst}
    failed = False
    for name in names:
        progress(f"bench {name}:")
        report = bench.run(
            name, repeats=args.repeats, progress=progress, **(options if name == "load" else {})
        )
        failed |= any(m["met"] is False for m in report["metrics"])
        if args.json:
            print(json.dumps(report, indent=1))
            continue
        for m in report["metrics"]:
            goal = f"goal {m['goal']}: {'met' if m['met'] else 'NOT met'}" if m["goal"] else ""
            print(f"  {m['name']:<52} {m['value']:>10.3f} {m['unit']:<14} {goal}")
    return 1 if failed else 0


def cmd_space(args, settings: Settings) -> int:
    from assistant.web.space import export

    folder = export(args.dir)
    print(
        f"Wrote the Space to {folder}. Push it: cd {folder} && git init && git add . && "
        "git commit -m space && git push https://huggingface.co/spaces/<you>/<name> main"
    )
    return 0
