import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestSample } from './dataset.js';

/**
 * A declared validation part of a test split (anomalib's `val_split_mode: from_test`), as in
 * ../shared/datasets/mtd/split_test.json: `validation` lists, per test folder, the file stems set aside for
 * choices (fusion, thresholds, which model); the test part is every other test image and decides nothing.
 */
export const PARTS = ['validation', 'test'] as const;
export type Part = (typeof PARTS)[number];

export interface TestSplit {
  file: string;
  sha256: string;
  rule?: string;
  seed?: number;
  validation: Record<string, string[]>;
}

export interface SplitInfo {
  file: string;
  sha256: string;
  part: Part;
  rule?: string;
  seed?: number;
}

export async function readSplit(file: string): Promise<TestSplit> {
  const bytes = await readFile(file);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`);
  }
  const validation = (doc as { validation?: unknown })?.validation;
  const ok = validation && typeof validation === 'object' && !Array.isArray(validation)
    && Object.values(validation).every((v) => Array.isArray(v) && v.every((s) => typeof s === 'string'));
  if (!ok) throw new Error(`${file} has no "validation" object of folder -> file stems`);
  const { rule, seed } = doc as { rule?: unknown; seed?: unknown };
  return {
    file,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    ...(typeof rule === 'string' ? { rule } : {}),
    ...(typeof seed === 'number' ? { seed } : {}),
    validation: validation as Record<string, string[]>,
  };
}

/**
 * The samples of one part. Every listed stem must be one of the samples: a split that names images the data
 * lacks was made for other data, and quietly scoring the rest would report a different part than declared.
 */
export function selectPart(samples: TestSample[], split: TestSplit, part: Part): TestSample[] {
  const key = (s: TestSample) => `${s.defect}/${path.parse(s.file).name}`;
  const present = new Set(samples.map(key));
  const listed = new Set(Object.entries(split.validation).flatMap(([folder, stems]) => stems.map((s) => `${folder}/${s}`)));
  const missing = [...listed].filter((k) => !present.has(k));
  if (missing.length) {
    throw new Error(`${split.file} lists ${missing.length} validation images the data does not have (e.g. test/${missing[0]}): it was made for other data`);
  }
  return samples.filter((s) => listed.has(key(s)) === (part === 'validation'));
}
