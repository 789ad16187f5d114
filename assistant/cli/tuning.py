"""`tune` (fine-tune a text model on your examples, then serve it) and `train` (the demo
picture model, trained on the CPU)."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.cli.common import progress
from assistant.settings import Settings


def add_commands(sub) -> None:
    train = sub.add_parser("train", help="train the demo text-to-image model on the CPU")
    train.add_argument("what", choices=["demo-diffusion"])
    train.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget")
    train.add_argument("--out", type=Path, help="where to save (default: models/demo_diffusion)")
    train.add_argument("--resume", type=Path, help="a saved model folder to go on training")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    train.set_defaults(func=cmd_train)

    tn = sub.add_parser("tune", help="fine-tune a text model on your examples, then serve it")
    tn.add_argument("data", help='JSONL of {"messages": [...]} or CSV of prompt,completion')
    tn.add_argument("--base", required=True, help="the catalog id to start from")
    tn.add_argument("--name", required=True, help="the new model's catalog id")
    tn.add_argument("--method", choices=["lora", "full"], default="lora")
    tn.add_argument("--epochs", type=int, default=3)
    tn.add_argument("--json", action="store_true")
    tn.set_defaults(func=cmd_tune)


def cmd_train(args, settings: Settings) -> int:
    from training.train_demo import OUT, evaluate, train

    out = args.out or OUT
    train(args.minutes, out, resume=args.resume, peak_lr=args.lr)
    evaluate(out)  # judged on held-out prompts: printed as JSON
    return 0


def cmd_tune(args, settings: Settings) -> int:
    from assistant.flow.service import Assistant
    from assistant.tuning import tune

    assistant = Assistant.from_settings(settings, progress=progress)

    def every_other_step(step) -> None:
        if isinstance(step, str):
            progress(f"  {step}")
        elif step.step == step.total or step.step % 2 == 0:
            progress(
                f"  step {step.step}/{step.total} · epoch {step.epoch} · loss {step.loss:.3f}"
                f" · {step.elapsed_s:.0f}s, ~{step.eta_s:.0f}s left"
            )

    card = tune(
        assistant, Path(args.data), args.base, args.name, args.method, args.epochs, every_other_step
    )
    if args.json:
        print(json.dumps(card, ensure_ascii=False, indent=1))
        return 0
    _print_card(card)
    return 0


def _print_card(card: dict) -> None:
    t = card["training"]
    print(
        f"Trained {card['id']} from {card['base']} ({card['method']}, {card['data']['train']} "
        f"examples, {t['steps']} steps) in {t['seconds']:.0f}s: {t['seconds_per_step']:.2f} s "
        f"per step, {t['tokens_per_s']:.0f} tokens/s."
    )
    print(f"Validation loss {t['val_loss_before']:.3f} → {t['val_loss_after']:.3f}.")
    for m in card["eval"]["models"]:
        print(
            f"  {m['model']:<40} {card['eval']['metric']} {m['score']:.2f} on {m['n']} "
            "held-back examples"
        )
    c = card["cost"]
    cloud = f"${c['usd_cloud']:.4f}" if c["usd_cloud"] is not None else "–"
    print(
        f"Cost: ${c['usd_local']:.5f} here ({c['device_seconds']:.0f} device-seconds) vs "
        f"{cloud} for a hosted fine-tuning job ({c['cloud_ref']})."
    )
    print(f'Serving now: python -m assistant ask "..." --model {card["id"]}')
