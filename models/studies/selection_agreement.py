"""How `--select-fusion` on painted defects agrees with real defects, per category (issue 26).

For each category: the manifest of an export on painted defects, the manifest of an export on the real defects
of a split's validation part, and fusion_candidates.py's files for the validation and test parts. Prints the
rank correlation of the candidates (painted criterion against real validation criterion), and for each selection
rule — all paths; the best on painted defects (no guard); the guarded painted choice; the choice on real
validation defects (guarded) — the image AUROC of its pick on the validation and the test part against the best
candidate's there:

    /usr/bin/python3 models/studies/selection_agreement.py \
        --case transistor runs/b-transistor-painted runs/b-transistor-real out/studies/b-transistor
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from mixdistill.fusion_select import best_candidate  # noqa: E402


def _rows(bundle: Path) -> list[dict]:
    return json.loads((bundle / "manifest.json").read_text())["provenance"]["fusionSelection"]["candidates"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", nargs=4, action="append", required=True, metavar=("NAME", "PAINTED", "REAL", "STUDY_PREFIX"),
                    help="the study files are STUDY_PREFIX-validation.json and STUDY_PREFIX-test.json")
    args = ap.parse_args()
    print("| category | Spearman (painted vs real) | rule | pick | validation image AUROC (best) | test image AUROC (best) | test img / px / AUPRO |")
    print("|---|---|---|---|---|---|---|")
    for name, painted, real, prefix in args.case:
        p, r = _rows(Path(painted)), _rows(Path(real))
        real_mean = {x["name"]: x["mean"] for x in r}
        common = [x["name"] for x in p if x["name"] in real_mean]
        rho = spearmanr([next(x["mean"] for x in p if x["name"] == n) for n in common], [real_mean[n] for n in common]).statistic
        parts = {part: {x["name"]: x for x in json.loads(Path(f"{prefix}-{part}.json").read_text())["candidates"]} for part in ("validation", "test")}
        best = {part: max(v.values(), key=lambda x: x["imageAUROC"]) for part, v in parts.items()}
        picks = {
            "all paths": "all paths",
            "best on painted": best_candidate(p)["name"],
            "guarded, painted": next(x["name"] for x in p if x["chosen"]),
            "guarded, real validation": next(x["name"] for x in r if x["chosen"]),
        }
        for i, (rule, pick) in enumerate(picks.items()):
            v, t = parts["validation"][pick], parts["test"][pick]
            print(f"| {name if i == 0 else ''} | {f'{rho:.2f} ({len(common)})' if i == 0 else ''} | {rule} | {pick} | "
                  f"{v['imageAUROC']:.3f} ({best['validation']['imageAUROC']:.3f}) | {t['imageAUROC']:.3f} ({best['test']['imageAUROC']:.3f}, {best['test']['name']}) | "
                  f"{t['imageAUROC']:.3f} / {t['pixelAUROC']:.3f} / {t['AUPRO']:.3f} |")


if __name__ == "__main__":
    main()
