/** What the janitor (statemachine/janitor.asl.yml) and the function that starts it agree on (docs/janitor.md). */

/** The statuses of a pipeline execution the janitor cleans up after; any other is left alone. */
export const STOPPED_STATUSES = ['ABORTED', 'TIMED_OUT', 'FAILED'] as const;
