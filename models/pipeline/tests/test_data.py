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
    assert sorted(p.suffix for p in cache.iterdir()) == [".jsonl", ".u8"]  # the pixels and their index, no temporary file


def test_a_failed_preparation_leaves_nothing_in_the_cache(tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    cache = tmp_path / "cache"
    with pytest.raises(subprocess.CalledProcessError):
        data.prepare([data.Sample(bad, "good")], 32, 32, "stretch", cache)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("size", [(90, 40), (30, 70), (61, 59)])
def test_letterbox_masks_land_where_the_service_puts_the_image(tmp_path, size):
    # The image is its own mask: the service's letterbox (src/image/preprocess.ts) and prepare_masks must agree
    # on the window and on the mirrored borders, or pixel labels drift off the pixels they label.
    from PIL import Image

    w, h = size
    yy, xx = np.mgrid[:h, :w]
    bright = ((xx // 12 + yy // 10) % 3 == 0) | (yy < 6) | (xx > w - 8)
    img = tmp_path / "part.png"
    Image.fromarray(np.where(bright, 255, 0).astype(np.uint8)).save(img)
    sample = data.Sample(img, "bar", img)
    prepared = data.prepare([sample], 32, 32, "letterbox", tmp_path / "cache")[0, :, :, 0]
    masks = data.prepare_masks([sample], 32, 32, "letterbox")[0]
    left, top, cw, ch = data.letterbox_window(w, h, 32, 32)
    assert (cw == 32) == (w >= h) and (ch == 32) == (h >= w)
    # The image is resized smoothly and the mask by nearest neighbour: they may differ only next to an edge.
    from scipy import ndimage

    edge = ndimage.binary_dilation(masks, np.ones((3, 3))) & ~ndimage.binary_erosion(masks, np.ones((3, 3)), border_value=1)
    assert masks.any() and not masks.all()
    assert not ((prepared > 127) != masks)[~edge].any()
