import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import type { InputSpec } from '../image/preprocess.js';
import { fromRoot } from '../paths.js';

/** TypeScript view of models/bundle.schema.json (the contract with the training pipeline). */
export type PathKind = 'direct' | 'skip' | 'symmetric';

export interface FeatureOutput {
  name: string;
  stride: number;
  channels: number;
}

export interface TeacherOutput extends FeatureOutput {
  /** teacher.onnx already outputs (f - mean) / std per channel; informational (nothing for the service to apply). */
  standardize?: { mean: number[]; std: number[] };
}

export interface StudentOutput extends FeatureOutput {
  imitates: string;
  path: PathKind;
  layer: string;
}

export interface FusionPath {
  student: string;
  weight: number;
  offset: number;
  scale: number;
}

export type Reduction = { kind: 'max' } | { kind: 'topk-mean'; k: number };

export interface ThresholdCalibration {
  threshold: number;
  low: number;
  stats?: Record<string, number>;
}

export interface Manifest {
  schemaVersion: 1;
  name: string;
  version: string;
  description?: string;
  card?: string;
  input: InputSpec & { name: string };
  teacher: { file: string; architecture?: string; outputs: TeacherOutput[] };
  student: { file: string; architecture?: string; outputs: StudentOutput[] };
  fusion: { paths: FusionPath[]; sigma: number; kernelSize: number; reduction: Reduction };
  calibration: {
    method: 'normal-quantile' | 'f1-optimal';
    description?: string;
    image: ThresholdCalibration;
    pixel: ThresholdCalibration;
    validation?: { normalImages?: number; defectiveImages?: number; split?: { file: string; sha256: string; part: 'validation' } };
  };
  provenance: Record<string, unknown> & { createdAt: string };
}

export const SCHEMA_PATH = fromRoot('models', 'bundle.schema.json');

const ajv = new Ajv2020.default({ allErrors: true, strict: false });
const validateSchema = ajv.compile<Manifest>(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')));

export class ManifestError extends Error {}

/** Schema validation plus the cross-field rules JSON Schema cannot state. Throws ManifestError. */
export function validateManifest(value: unknown, folderName?: string): Manifest {
  if (!validateSchema(value)) {
    const details = (validateSchema.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '(root)'} ${e.message}`);
    throw new ManifestError(`manifest.json does not match bundle.schema.json: ${details.join('; ')}`);
  }
  const m = value;
  if (folderName !== undefined && m.name !== folderName) {
    throw new ManifestError(`manifest name "${m.name}" differs from its folder "${folderName}"`);
  }
  const teacher = new Map(m.teacher.outputs.map((o) => [o.name, o]));
  const student = new Map(m.student.outputs.map((o) => [o.name, o]));
  for (const o of m.student.outputs) {
    const t = teacher.get(o.imitates);
    if (!t) throw new ManifestError(`student output ${o.name} imitates unknown teacher output ${o.imitates}`);
    if (t.channels !== o.channels) {
      throw new ManifestError(`student output ${o.name} has ${o.channels} channels, teacher output ${t.name} has ${t.channels}`);
    }
  }
  for (const f of m.fusion.paths) {
    if (!student.has(f.student)) throw new ManifestError(`fusion path ${f.student} is not a student output`);
  }
  if ((m.input.fit === 'tile') !== (m.input.tile !== undefined)) {
    throw new ManifestError('input.tile is required with input.fit tile and refused with any other fit');
  }
  if (m.input.tile && m.input.tile.overlap >= Math.min(m.input.width, m.input.height)) {
    throw new ManifestError(`input.tile.overlap ${m.input.tile.overlap} must be below the tile's width and height`);
  }
  if (m.fusion.sigma > 0 && m.fusion.kernelSize % 2 === 0) throw new ManifestError('fusion.kernelSize must be odd');
  const pad = (m.fusion.kernelSize - 1) / 2;
  if (m.fusion.sigma > 0 && (pad >= m.input.width || pad >= m.input.height)) {
    throw new ManifestError(`fusion.kernelSize ${m.fusion.kernelSize} is too large for a ${m.input.width}x${m.input.height} input (reflect padding)`);
  }
  if (m.fusion.reduction.kind === 'topk-mean' && m.fusion.reduction.k > m.input.width * m.input.height) {
    throw new ManifestError('fusion.reduction.k exceeds the number of pixels');
  }
  for (const key of ['image', 'pixel'] as const) {
    const c = m.calibration[key];
    if (!(c.low < c.threshold)) throw new ManifestError(`calibration.${key}.low must be below its threshold`);
  }
  return m;
}
