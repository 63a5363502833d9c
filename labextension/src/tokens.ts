/**
 * The REST contract of the jupyter_mlops server extension (docs/rest-api.md), mirrored as
 * route builders and response shapes. Times are epoch milliseconds unless named otherwise.
 */

/** Every route lives under this prefix of the server's base URL. */
export const API_NAMESPACE = 'jupyter-mlops/api';

const enc = encodeURIComponent;

function query(params: { [key: string]: string | number | undefined }): string {
  const parts = Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${enc(key)}=${enc(String(value))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Paths relative to `API_NAMESPACE`, one per route of the contract. */
export const Routes = {
  status: (): string => 'status',
  runs: (notebook: string, limit?: number, pageToken?: string): string =>
    `runs${query({ notebook, limit, page_token: pageToken })}`,
  run: (runId: string): string => `runs/${enc(runId)}`,
  compare: (runIds: string[]): string =>
    `compare?${runIds.map(id => `run=${enc(id)}`).join('&')}`,
  moveNotebook: (): string => 'notebooks/move',
  pipelines: (name?: string, limit?: number): string =>
    `pipelines${query({ name, limit })}`,
  models: (): string => 'models',
  promote: (name: string): string => `models/${enc(name)}/promote`,
  rollback: (name: string): string => `models/${enc(name)}/rollback`,
  deployments: (): string => 'deployments',
  deployment: (id: string): string => `deployments/${enc(id)}`,
  traffic: (id: string): string => `deployments/${enc(id)}/traffic`,
  switch: (id: string): string => `deployments/${enc(id)}/switch`,
  monitor: (deployment: string): string => `monitor/${enc(deployment)}`,
  alerts: (limit?: number): string => `alerts${query({ limit })}`,
  audit: (): string => 'audit'
};

/** The body of every error answer (4xx/5xx). */
export interface IErrorBody {
  error: string;
  message: string;
  /** 409 (promotion refused): the gates that failed. */
  failed?: IGateResult[];
}

export interface IStatus {
  version: string;
  project_dir: string;
  root_dir: string;
  tracking_uri: string;
  embedded: boolean;
}

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface ISessionRun {
  run_id: string;
  status: string;
  start_time: number;
  end_time: number | null;
  name: string;
  kernel_pid: string | null;
}

export interface ICellRun {
  /** "" while the record is still in the kernel's journal. */
  run_id: string;
  /** Stable across the drain from journal to store: the key of a row. */
  record_id: string | null;
  session_run_id: string | null;
  experiment: string;
  execution_count: string | null;
  cell_id: string | null;
  status: RunStatus;
  start_time: number;
  end_time: number | null;
  duration_s: number | null;
  source_preview: string;
  params: { [key: string]: string };
  metrics: { [key: string]: number };
  error: string | null;
  pending: boolean;
  /** An input changed since the run; null when its dataflow is unknown or not recorded. */
  stale?: boolean | null;
  /** Why it is stale, or why its dataflow is unknown. */
  stale_reason?: string | null;
  /** from a `# mlops: <label>` comment; then `source_preview` is the label */
  label: string | null;
  /** where a failed cell stopped: line in the cell, its code, its function (null: top) */
  error_line: number | null;
  error_code: string | null;
  error_where: string | null;
  /** the last frames from the cell on */
  error_traceback: string | null;
  /** a running cell's metrics so far: name -> [[step, value], ...] in step order */
  history?: { [name: string]: number[][] } | null;
}

export interface IRunsPage {
  notebook: string;
  experiment: string;
  /** null: nothing tracked for this notebook yet. */
  experiment_id: string | null;
  /** stored cell runs of this page, newest first */
  runs: ICellRun[];
  /** the notebook's sessions within this page */
  sessions: ISessionRun[];
  /** first page only: journal records not yet stored */
  pending: ICellRun[];
  /** null on the last page (which may be empty) */
  next_page_token: string | null;
  /** a running kernel tracks this notebook (`%load_ext` ran), even before its first cell */
  tracking: boolean;
}

/** `POST notebooks/move`: the experiments that followed a renamed notebook or folder. */
export interface INotebookMove {
  moved: { from: string; to: string }[];
  skipped: { from: string; to: string; reason: string }[];
  /** the new path, absolute, as the notebook's kernel sees it */
  notebook: string;
}

export interface IDataset {
  name: string;
  digest: string;
  rows: number | null;
}

export interface IRunDetail extends ICellRun {
  kind: string;
  name: string;
  source: string | null;
  tags: { [key: string]: string };
  datasets: IDataset[];
  artifacts: string[];
}

/** `GET compare`: runs side by side, one value per run in each list. */
export interface IRunComparison {
  runs: {
    run_id: string;
    kind: string;
    label: string;
    status: string;
    start_time: number;
    duration_s: number | null;
  }[];
  params: { [name: string]: (string | null)[] };
  metrics: { [name: string]: (number | null)[] };
  differing_params: string[];
}

export interface IPipelineRun {
  run_id: string;
  name: string;
  status: string;
  start_time: number;
  duration_s: number | null;
  params: { [key: string]: unknown };
  /** step -> status, in the order the steps can run */
  steps: { [step: string]: string };
  failed_step: string | null;
  /** step -> seconds (0 for a cache hit); absent in runs recorded before it was kept */
  step_durations?: { [step: string]: number };
  /** while it runs: each RUNNING step's start (epoch ms); the others WAITING or done */
  step_started?: { [step: string]: number };
}

export interface IGateResult {
  gate: string;
  passed: boolean;
  evidence: string;
}

export interface IAliasMove {
  alias: string;
  from_version: string | null;
  to_version: string | null;
  who: string;
  /** ISO 8601 */
  when: string;
  reason: string;
  kind: 'promote' | 'rollback';
  gates: string;
}

export interface IModelVersion {
  version: string;
  run_id: string | null;
  status: string;
  created: number;
  aliases: string[];
  parity_passed: boolean | null;
  /** alias -> the recorded verdict of its gates for this version */
  gates: { [alias: string]: string };
  /** the metrics of the run it was packaged in */
  metrics: { [key: string]: number };
}

export interface IModel {
  name: string;
  /** alias -> version */
  aliases: { [alias: string]: string };
  versions: IModelVersion[];
  history: IAliasMove[];
  /** alias -> the version a rollback would move it to; null: nothing to roll back to */
  rollback_to: { [alias: string]: string | null };
}

export interface IPromotion {
  name: string;
  version: string;
  alias: string;
  previous: string | null;
  gates: IGateResult[];
  verdict: 'passed' | 'no gates' | 'forced';
}

export interface IPromoteRequest {
  version: string;
  alias: string;
  reason: string;
  force?: boolean;
}

export interface IRollbackRequest {
  alias: string;
  reason?: string;
}

export type DeploymentStatus = 'running' | 'unresponsive' | 'dead' | 'stopped';

export interface IDeployment {
  id: string;
  model: string;
  spec: string;
  url: string;
  host: string;
  port: number;
  pid: number;
  versions: string[];
  /** version -> fraction of requests; the fractions sum to 1 */
  weights: { [version: string]: number };
  follow: string | null;
  status: DeploymentStatus;
  /** epoch seconds */
  created: number;
}

export interface ITrafficRequest {
  /** version -> percent; the percents sum to 100 */
  weights: { [version: string]: number };
}

export interface IAlert {
  /** ISO 8601 */
  time: string;
  deployment: string;
  model: string;
  version: string;
  share_drifted: number;
  drifted_columns: string[];
  actions: string[];
  run_id: string;
}

/** What a check of a deployment's traffic found (POST monitor/{id}). */
export interface IMonitorResult {
  deployment: string;
  model: string;
  version: string;
  run_id: string;
  rows: number;
  drift: { share_drifted: number; drifted_columns: string[] };
  triggered: boolean;
  actions: string[];
  reasons: string[];
}

export interface IMonitorRun {
  run_id: string;
  time: number;
  version: string;
  window: string;
  rows: number | null;
  share_drifted: number | null;
  columns_drifted: number | null;
  alert: boolean;
  actions: string[];
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  error_rate: number | null;
  drift_scores: { [column: string]: number };
  /** labelled quality of the window: accuracy, f1, ... or mae, rmse, r2; labelled_rows */
  quality?: { [metric: string]: number };
  /** slice_min_<metric>, slice_max_<metric>, fairness_<metric> */
  fairness?: { [metric: string]: number };
  /** why the policy acted */
  reasons?: string[];
  attribution_shift?: number | null;
}

/** What POST audit wrote: paths relative to the project. */
export interface IAuditWritten {
  html: string;
  markdown: string;
  model: string;
  version: string;
}

export interface IMonitorStatus {
  deployment: string;
  model: string;
  /** null: never monitored */
  latest: IMonitorRun | null;
  alerts: IAlert[];
}

export interface IAlerts {
  alerts: IAlert[];
  count: number;
}
