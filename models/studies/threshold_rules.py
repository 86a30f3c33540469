"""The image-threshold rules of calibrate.RULES on the study files of fusion_candidates.py (issue 26).

Each file holds, for one bundle and one part of a split, the held-out normal images' scores (all a rule sees),
and the part's good and defective scores. Prints per file each rule's F1 and false-alarm rate on the part against
F1-max, and the rules ranked by their worst gap (F1-max - F1) over the files, as the study note's rule reads:

    /usr/bin/python3 models/studies/threshold_rules.py out/studies/*-validation.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from fusion_candidates import f1_at  # noqa: E402
from mixdistill.calibrate import RULES, f1_optimal  # noqa: E402


def main() -> None:
    files = [Path(f) for f in sys.argv[1:]]
    gaps: dict[str, list[float]] = {k: [] for k in RULES}
    fprs: dict[str, list[float]] = {k: [] for k in RULES}
    for f in files:
        d = json.loads(f.read_text())
        n, g, x = (np.asarray(d[k]) for k in ("normalScores", "goodScores", "defectScores"))
        f1max = f1_optimal(g, x)[1]
        print(f"{f.name}: {len(n)} held-out normals, {len(g)} good, {len(x)} defective; F1-max {f1max:.3f}")
        for k, rule in RULES.items():
            t = rule(n)
            f1, fpr = f1_at(g, x, t), float((g > t).mean())
            gaps[k].append(f1max - f1)
            fprs[k].append(fpr)
            print(f"  {k:24s} threshold {t:8.3f}  F1 {f1:.3f}  gap {f1max - f1:.3f}  false alarms {fpr:.2f}")
    print("\nrules by worst gap over the files (then mean false-alarm rate):")
    for k in sorted(RULES, key=lambda k: (round(max(gaps[k]), 3), np.mean(fprs[k]))):
        print(f"  {k:24s} worst gap {max(gaps[k]):.3f}  mean gap {np.mean(gaps[k]):.3f}  mean false alarms {np.mean(fprs[k]):.3f}")

    # Pixel thresholds, as fusion_candidates.py computed them (pixel F1 over every pixel of the part).
    px_gaps: dict[str, list[float]] = {}
    for f in files:
        d = json.loads(f.read_text())
        for k, v in d.get("pixelThresholds", {}).items():
            px_gaps.setdefault(k, []).append(d["pixelF1Max"] - v["f1"])
    complete = {k: g for k, g in px_gaps.items() if len(g) == len(files)}
    if complete:
        print("\npixel-threshold rules by worst gap (pixel F1-max - pixel F1) over the files:")
        for k in sorted(complete, key=lambda k: max(complete[k])):
            print(f"  {k:58s} worst gap {max(complete[k]):.3f}  mean gap {np.mean(complete[k]):.3f}")


if __name__ == "__main__":
    main()
