"""Do a teacher's features shift far from the defects of a defective image? (a declared look at the test set)

For each tap of one run's teacher: each test image's locations more than --far px from any defect (all of a
good image's), their features' cosine distance to the nearest of a bank of training images' features, the
median per image; printed per defect folder, and as an image AUROC (defective against good). A shift that grows
with the tap's depth is the defect seen from afar through the receptive field; one already present at the
shallowest tap would be a difference in how the defective images were taken.

    /usr/bin/python3 models/studies/teacher_shift.py --run runs/inc-direct140 --data ../shared/datasets/mtd/magnetic_tile

About 9 minutes on 2 CPU cores for the InceptionV3 teacher.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from mixdistill import data, fusion_select  # noqa: E402
from mixdistill.members import Members  # noqa: E402

MAX_GRID = 40  # finer taps are average-pooled 2x, which keeps the kNN search small


def tap_features(members: Members, images: np.ndarray) -> list[torch.Tensor]:
    """Per tap, unit-length teacher features [N, C, h, w]."""
    out: list[list[torch.Tensor]] = []
    with torch.no_grad():
        for i in range(0, len(images), 16):
            feats = members.teacher_module()(members.tensors(images[i:i + 16]))
            out = out or [[] for _ in feats]
            for k, t in enumerate(feats):
                out[k].append(F.normalize(F.avg_pool2d(t, 2) if t.shape[-1] > MAX_GRID else t, dim=1))
    return [torch.cat(c) for c in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="MVTec AD layout category folder")
    ap.add_argument("--far", type=int, default=48, help="px from any defect, at the input size")
    ap.add_argument("--bank-images", type=int, default=150)
    ap.add_argument("--bank-size", type=int, default=30000, help="training locations kept in the bank, per tap")
    args = ap.parse_args()
    torch.set_num_threads(2)
    members = Members.load([args.run], "best.pt")
    cfg, rng = members.cfg, np.random.default_rng(0)
    train = data.train_good(args.data)
    train = [train[i] for i in rng.choice(len(train), min(args.bank_images, len(train)), replace=False)]
    test = data.test_samples(args.data)
    cache = args.run.parent / ".cache"
    bank_feats = tap_features(members, data.prepare(train, cfg.width, cfg.height, cfg.fit, cache))
    test_feats = tap_features(members, data.prepare(test, cfg.width, cfg.height, cfg.fit, cache))
    masks = data.prepare_masks(test, cfg.width, cfg.height, cfg.fit)
    far = np.stack([~ndimage.binary_dilation(m, iterations=args.far) if m.any() else np.ones_like(m) for m in masks])
    defect = np.array([s.defect for s in test])
    for tap, bank_t, t in zip(members.runs[0].teacher.taps, bank_feats, test_feats):
        n, c, h, w = t.shape
        bank = bank_t.permute(0, 2, 3, 1).reshape(-1, c)
        bank = bank[torch.from_numpy(rng.choice(len(bank), min(len(bank), args.bank_size), replace=False))]
        q = t.permute(0, 2, 3, 1).reshape(-1, c)
        dist = torch.cat([(1 - q[i:i + 4096] @ bank.T).min(1).values for i in range(0, len(q), 4096)]).reshape(n, h, w).numpy()
        # a cell counts as far when all of it is
        far_cells = F.interpolate(torch.from_numpy(far[:, None].astype(np.float32)), size=(h, w), mode="area").numpy()[:, 0] > 0.999
        keep = far_cells.reshape(n, -1).any(1)
        med = np.array([np.median(d[f]) if k else np.nan for d, f, k in zip(dist, far_cells, keep)])
        per = " ".join(f"{k} {np.nanmedian(med[defect == k]):.3f}" for k in sorted(set(defect)))
        auc = fusion_select.auroc(med[keep], defect[keep] != "good")
        print(f"{tap} ({h}x{w}): image AUROC {auc:.3f} ({keep.sum()} images); median distance {per}", flush=True)


if __name__ == "__main__":
    main()
