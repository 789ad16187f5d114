"""The demo image model's grammar and judge: the judge is checked before it judges anything."""

from __future__ import annotations

import random

from assistant import scenes


def test_the_judge_reads_rendered_scenes_and_rejects_mismatched_captions():
    right, wrong = scenes.check_judge(400)
    assert right >= 0.99  # it reads what was drawn
    assert wrong <= 0.02  # and does not agree with a caption of another scene


def test_held_out_combinations_never_appear_in_training_scenes():
    held = scenes.held_out()
    assert len(held) == 25 and held == scenes.held_out()  # fixed by its seed
    rng = random.Random(0)
    for _ in range(2000):
        scene = scenes.random_scene(rng, held)
        assert not any((scene.background, t.color, t.shape) in held for t in scene.things)
        assert all(t.color != scene.background for t in scene.things)


def test_captions_follow_the_grammar():
    one = scenes.Scene("blue", (scenes.Thing("red", "circle"),))
    assert one.caption == "a red circle on a blue background"
    two = scenes.Scene("white", (scenes.Thing("green", "square", "left"),
                                 scenes.Thing("black", "triangle", "right")))  # fmt: skip
    assert two.caption == ("a green square at the left and a black triangle at the right "
                           "on a white background")  # fmt: skip
    judged = scenes.judge(scenes.render(one))
    assert judged == {"background": "blue", "color": "red", "shape": "circle"}
