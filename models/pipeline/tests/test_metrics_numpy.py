"""The service's metric code (src/eval/metrics.ts) against an independent numpy implementation."""
import json
import shutil
import subprocess
from collections import deque

import numpy as np
import pytest

from mixdistill.teachers.nsfwjs import REPO_ROOT

METRICS_JS = REPO_ROOT / "dist" / "src" / "eval" / "metrics.js"
pytestmark = pytest.mark.skipif(not (METRICS_JS.exists() and shutil.which("node")), reason="the service is not built (npm run build)")

NODE = """
import { auroc, PixelMetrics } from '%s';
let s = ''; process.stdin.on('data', (d) => (s += d)).on('end', () => {
  const x = JSON.parse(s);
  const px = new PixelMetrics(0, 1, 100);
  x.maps.forEach((m, i) => px.add(Float32Array.from(m), x.masks[i] ? Uint8Array.from(x.masks[i]) : null, x.w, x.h));
  console.log(JSON.stringify({ auroc: auroc(x.scores, x.labels), pixelAuroc: px.pixelAuroc(), aupro: px.aupro(0.3) }));
});
"""


def np_auroc(scores, labels):
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos, neg = labels.sum(), (~labels).sum()
    return (ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg)


def np_components(mask):
    h, w = mask.shape
    label = np.zeros((h, w), int)
    n = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not label[y, x]:
                n += 1
                label[y, x] = n
                q = deque([(y, x)])
                while q:
                    cy, cx = q.popleft()
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not label[ny, nx]:
                                label[ny, nx] = n
                                q.append((ny, nx))
    return [label == k for k in range(1, n + 1)]


def np_aupro(maps, masks, limit=0.3):
    regions = [(i, r) for i, m in enumerate(masks) if m is not None for r in np_components(m)]
    normal = np.concatenate([(m if m is not None else np.zeros_like(maps[i], bool)).ravel() == 0 for i, m in enumerate(masks)])
    values = np.concatenate([m.ravel() for m in maps])
    fpr, pro = [0.0], [0.0]
    for t in np.unique(values)[::-1]:
        fpr.append(((values >= t) & normal).sum() / normal.sum())
        pro.append(np.mean([(maps[i][r] >= t).mean() for i, r in regions]))
    fpr, pro = np.array(fpr), np.array(pro)
    keep = fpr <= limit
    x, y = list(fpr[keep]), list(pro[keep])
    k = keep.sum()
    if k < len(fpr):  # interpolate at the limit
        x.append(limit)
        y.append(pro[k - 1] + (pro[k] - pro[k - 1]) * (limit - fpr[k - 1]) / (fpr[k] - fpr[k - 1]))
    return np.trapz(y, x) / limit


def test_metrics_agree_with_numpy():
    rng = np.random.default_rng(3)
    h, w = 9, 11
    masks = [None, None, None] + [np.zeros((h, w), bool) for _ in range(4)]
    for k, m in enumerate(masks[3:]):
        m[k:k + 3, 2 * k:2 * k + 4] = True
        m[h - 2:, w - 2 - k:] = k % 2 == 0  # a second region in some images
    maps = [np.round(np.clip(rng.random((h, w)) * 0.7 + (0.3 * m if m is not None else 0), 0, 0.999) * 50) / 50 for m in masks]
    scores = np.round(rng.random(40) * 10) / 10  # many ties
    labels = rng.random(40) < 0.4
    payload = {"h": h, "w": w, "maps": [m.ravel().tolist() for m in maps], "masks": [None if m is None else m.ravel().astype(int).tolist() for m in masks],
               "scores": scores.tolist(), "labels": labels.tolist()}
    out = subprocess.run(["node", "--input-type=module", "-e", NODE % METRICS_JS.as_uri()], input=json.dumps(payload), capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["auroc"] == pytest.approx(np_auroc(scores, labels), abs=1e-12)
    flat_labels = np.concatenate([(m if m is not None else np.zeros((h, w), bool)).ravel() for m in masks])
    assert got["pixelAuroc"] == pytest.approx(np_auroc(np.concatenate([m.ravel() for m in maps]), flat_labels), abs=1e-9)
    assert got["aupro"] == pytest.approx(np_aupro(maps, masks), abs=1e-9)
