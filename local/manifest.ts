/** The manifest a run reports and its summary (see the README's "Output"): the shapes live with RecordManifest. */
export {
  isRunSummary,
  MAX_FAILED_LINES,
  type Manifest,
  type ManifestLocation,
  type RunSummary,
  type TargetLine,
  type TargetResult,
} from '../functions/shared/manifest';
