import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface TestSample {
  file: string;
  defect: string; // 'good' or the defect type
  mask?: string;
}

const IMAGE = /\.(png|jpe?g|bmp|tiff?|webp)$/i;

/** The test split of an MVTec-AD-layout category folder: test/<defect>/*, masks in ground_truth/<defect>/<stem>_mask.png. */
export async function testSamples(category: string): Promise<TestSample[]> {
  const testDir = path.join(category, 'test');
  const defects = (await readdir(testDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  if (!defects.includes('good')) throw new Error(`${testDir} has no good/ folder: not an MVTec AD category`);
  const out: TestSample[] = [];
  for (const defect of defects) {
    const files = (await readdir(path.join(testDir, defect))).filter((f) => IMAGE.test(f)).sort();
    for (const f of files) {
      const sample: TestSample = { file: path.join(testDir, defect, f), defect };
      if (defect !== 'good') {
        const mask = path.join(category, 'ground_truth', defect, `${path.parse(f).name}_mask.png`);
        if (await stat(mask).then(() => true, () => false)) sample.mask = mask;
      }
      out.push(sample);
    }
  }
  return out;
}
