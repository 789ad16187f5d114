"""The demo image model's grammar and judge: the judge is checked before it judges anything."""

from __future__ import annotations

import random

from training import scenes


def test_the_judge_reads_rendered_scenes_and_rejects_mismatched_captions():
    right, wrong = scenes.check_judge(300)
    assert right >= 0.99  # it reads what was drawn
    assert wrong <= 0.02  # and does not agree with a caption of another scene


def test_the_judge_still_reads_pictures_with_the_flaws_generated_ones_have():
    # Soft edges, grain and stray speckles: the first judge, with a fixed
    # threshold and a box around every odd pixel, read 77% of these right.
    right, wrong = scenes.check_judge(300, degraded=True)
    assert right >= 0.95
    assert wrong <= 0.02


def test_a_stray_speckle_does_not_change_the_shape():
    scene = scenes.Scene("black", (scenes.Thing("white", "square"),))
    pixels = scenes.render(scene).copy()
    pixels[1, 30] = scenes.COLORS["red"]  # far from the square
    assert scenes.judge(pixels) == {"background": "black", "color": "white", "shape": "square"}


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
    two = scenes.Scene(
        "white",
        (scenes.Thing("green", "square", "left"), scenes.Thing("black", "triangle", "right")),
    )
    assert two.caption == (
        "a green square at the left and a black triangle at the right on a white background"
    )
    judged = scenes.judge(scenes.render(one))
    assert judged == {"background": "blue", "color": "red", "shape": "circle"}


def test_the_judge_reads_places_and_two_objects_on_the_scenes_the_model_is_asked_for():
    rng = random.Random(5)
    for which, least in (("placed", 0.99), ("two", 0.9)):
        wanted = scenes.test_scenes(which)
        seen = [scenes.look(scenes.render(w, rng)) for w in wanted]
        assert sum(map(scenes.follows, seen, wanted)) / len(wanted) >= least
        # the captions of other held-out combinations must not pass
        shifted = wanted[4:] + wanted[:4]
        assert sum(map(scenes.follows, seen, shifted)) / len(wanted) <= 0.05


def test_test_scenes_are_made_only_of_held_out_combinations():
    held = scenes.held_out()
    for which in ("single", "placed", "two"):
        wanted = scenes.test_scenes(which)
        assert wanted and all(scenes.kind(w) == which for w in wanted)
        assert all((w.background, t.color, t.shape) in held for w in wanted for t in w.things)
