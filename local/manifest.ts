/** The manifest a run reports and its summary (docs/output.md): the shapes live with RecordManifest. */
export {
  isRunSummary,
  MAX_FAILED_LINES,
  type Manifest,
  type ManifestLocation,
  type RunSummary,
  type TargetLine,
  type TargetResult,
} from '../functions/shared/manifest';
