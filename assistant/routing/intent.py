"""What a request's words ask for, in any of our languages, typos included.

A nearest-exemplar classifier over hashed character n-grams (TF-IDF): each
label has a few dozen example requests (router_data/exemplars.json), and a
request takes the label whose closest exemplars are closest to it.

Why character n-grams and not the packed MiniLM embedder: MiniLM was
trained on English, while requests come in Russian, Polish and Chinese and
with typos; n-grams of 1-4 characters match "нарисуй"/"нарисую",
"narysuj"/"narysój" and "画一只"/"画个" without any model, in well under a
millisecond. Rules still decide what rules decide well (an attached file's
kind); this decides only between intents of the words.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import zlib
from collections import Counter
from pathlib import Path

EXEMPLARS = Path(__file__).parent / "router_data" / "exemplars.json"
DIMS = 1 << 16  # hashed feature space; collisions are rare at this size
K = 3  # exemplars per label that vote


def _grams(text: str) -> Counter:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    grams: Counter = Counter()
    for word in text.split():
        padded = f" {word} "
        for n in (1, 2, 3, 4):
            for i in range(len(padded) - n + 1):
                grams[zlib.crc32(padded[i : i + n].encode()) % DIMS] += 1
    return grams


class IntentClassifier:
    def __init__(self, exemplars: dict[str, list[str]]):
        import numpy as np

        self.labels = sorted(exemplars)
        texts = [(label, t) for label in self.labels for t in exemplars[label]]
        grams = [_grams(t) for _, t in texts]
        df: Counter = Counter(g for counts in grams for g in counts)
        n = len(texts)
        self.idf = {g: math.log((n + 1) / (c + 1)) + 1 for g, c in df.items()}
        self.matrix = np.stack([self._vector(c) for c in grams])
        self.owner = np.array([self.labels.index(label) for label, _ in texts])

    @classmethod
    def load(cls, path: Path = EXEMPLARS) -> IntentClassifier:
        data = json.loads(path.read_text())
        return cls({k: v for k, v in data.items() if not k.startswith("_")})

    def _vector(self, counts: Counter):
        import numpy as np

        v = np.zeros(DIMS, dtype=np.float32)
        for g, c in counts.items():
            v[g] = (1 + math.log(c)) * self.idf.get(g, 0.0)  # unseen n-grams carry nothing
        norm = float(np.linalg.norm(v))
        return v / norm if norm else v

    def scores(self, text: str, among: tuple[str, ...]) -> dict[str, float]:
        """Mean cosine of the K closest exemplars of each label in ``among``."""
        import numpy as np

        sims = self.matrix @ self._vector(_grams(text))
        out = {}
        for label in among:
            own = np.sort(sims[self.owner == self.labels.index(label)])[-K:]
            out[label] = float(own.mean())
        return out

    def classify(self, text: str, among: tuple[str, ...]) -> tuple[str, float, dict]:
        """(label, confidence 0.5-1 from the margin over the runner-up, all scores)."""
        scores = self.scores(text, among)
        ranked = sorted(scores, key=scores.get, reverse=True)
        best, second = scores[ranked[0]], scores[ranked[1]] if len(ranked) > 1 else 0.0
        confidence = 0.5 + 0.5 * (best - second) / best if best > 0 else 0.5
        return ranked[0], round(min(confidence, 0.99), 2), scores
