"""The prepared-image cache, shared by runs that may start side by side."""
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("torch")

from mixdistill import data  # noqa: E402
from mixdistill.synthetic import write  # noqa: E402

pytestmark = pytest.mark.skipif(not (data.PREPARE_JS.exists() and shutil.which("node")),
                                reason="the service is not built (npm run build)")


def test_runs_preparing_the_same_images_at_once_both_get_them(tmp_path):
    # Two runs launched together once raced on one temporary file name and the loser crashed.
    samples = data.train_good(write(tmp_path / "data", size=48, train=4, test_good=1, test_bad=1))
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: data.prepare(samples, 32, 32, "stretch", cache), range(4)))
    assert all(r.shape == (4, 32, 32, 3) and np.array_equal(r, results[0]) for r in results)
    assert [p.suffix for p in cache.iterdir()] == [".u8"]  # no temporary file left behind


def test_a_failed_preparation_leaves_nothing_in_the_cache(tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    cache = tmp_path / "cache"
    with pytest.raises(subprocess.CalledProcessError):
        data.prepare([data.Sample(bad, "good")], 32, 32, "stretch", cache)
    assert list(cache.iterdir()) == []
