import t from 'tap';
import { normalize, normalizeMap } from '../src/detect/scoring.js';

t.test('normalize: the normal median maps to 0, the threshold to 0.5, clamped to [0, 1]', async (t) => {
  const cal = { low: 0.25, threshold: 0.75 };
  t.same([0.1, 0.25, 0.5, 0.75, 1.25, 2.0].map((v) => normalize(v, cal)), [0, 0, 0.25, 0.5, 1, 1]);
  t.same([0.5, 0.6, 0.7].map((v) => normalize(v, { low: 0.6, threshold: 0.6 })), [0, 0, 1], 'threshold = low: a step at the threshold');
});

t.test('normalizeMap is normalize() of every element', async (t) => {
  const map = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 2);
  for (const cal of [{ low: -0.5, threshold: 0.7 }, { low: 0.3, threshold: 0.3 }]) {
    const got = normalizeMap(map, cal);
    t.equal(got.length, map.length);
    t.ok(got.every((v, i) => v === Math.fround(normalize(map[i], cal))), `low ${cal.low}, threshold ${cal.threshold}`);
  }
});
