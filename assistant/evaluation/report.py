"""An eval report, and two runs side by side, as a terminal prints them (`eval`)."""

from __future__ import annotations


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def print_eval(report: dict) -> None:
    better = "higher" if report["higher_is_better"] else "lower"
    print(
        f"{report['dataset']} · {report['task']} · metric {report['metric']} ({better} is "
        f"better) · run {report['run']}"
    )
    if "judge" in report:
        print(f"judged by {report['judge']['model']}: {report['judge']['bias']}")
    print(
        f"{'model':<40} {'score':>7} {'n':>4} {'failed':>6} {'p50 s':>7} {'$ here':>10} "
        f"{'$ cloud':>10}"
    )
    for m in report["models"]:
        cloud = f"{m['usd_cloud']:.6f}" if m["usd_cloud"] is not None else "–"
        print(
            f"{m['model']:<40} {_score(m['score']):>7} {m['n']:>4} {m['failed']:>6} "
            f"{m['latency_p50_s']:>7.2f} {m['usd_local']:>10.6f} {cloud:>10}"
        )


def print_side_by_side(diff: dict) -> None:
    """Per model pair the score's move, then every item whose score changed."""
    changed = f"{diff['changed']} of {len(diff['items'])} items changed"
    print(f"\nAgainst run {diff['a']['run']} ({changed}):")
    for m in diff["models"]:
        delta = "–" if m["delta"] is None else f"{m['delta']:+.3f}"
        print(f"  {m['a']} → {m['b']}: {_score(m['score_a'])} → {_score(m['score_b'])} ({delta})")
    for i in diff["items"]:
        if i["changed"]:
            delta = "–" if i["delta"] is None else f"{i['delta']:+.2f}"
            print(f"  {i['id']:<16} {_score(i['score_a'])} → {_score(i['score_b'])} ({delta})")
            print(f"      A: {(i['output_a'] or '–')[:100]}")
            print(f"      B: {(i['output_b'] or '–')[:100]}")
