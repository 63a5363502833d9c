import * as React from 'react';

import { RunsModel, rowKey } from '../runsModel';
import { ICellRun, IRunComparison, IRunDetail } from '../tokens';
import {
  ErrorMessage,
  KeyValues,
  Loading,
  Message,
  Elapsed,
  Section,
  StatusBadge,
  formatDuration,
  formatNumber,
  formatTime,
  onActivate
} from './common';

/** The active notebook's cell runs, newest first; a row opens its details. */
export function RunsSection(props: { model: RunsModel }): JSX.Element {
  const { model } = props;
  const page = model.page;
  const rows = model.rows;
  return (
    <Section
      id="runs"
      title="Cell runs"
      count={page.value ? rows.length : undefined}
    >
      {model.notebook && (
        <div className="jp-mlops-notebook" title={model.notebook}>
          {model.notebook}
        </div>
      )}
      <RunsBody model={model} rows={rows} />
    </Section>
  );
}

function RunsBody(props: { model: RunsModel; rows: ICellRun[] }): JSX.Element {
  const { model, rows } = props;
  const page = model.page;
  if (model.notebook === null) {
    return (
      <Message>
        Open a notebook to see its cell runs here. Run{' '}
        <code>%load_ext jupyter_mlops</code> in a notebook cell to track its
        runs.
      </Message>
    );
  }
  if (page.error && !page.value) {
    return <ErrorMessage error={page.error} what="the cell runs" />;
  }
  if (!page.loaded) {
    return <Loading what="cell runs" />;
  }
  return (
    <>
      {page.error && (
        <ErrorMessage error={page.error} what="the latest cell runs" />
      )}
      {rows.length === 0 && page.value?.tracking ? (
        <Message>
          Tracking is on for this notebook. Every cell you run from now on
          appears here with its params and metrics.
        </Message>
      ) : rows.length === 0 ? (
        <Message>
          Nothing tracked for this notebook yet. Run{' '}
          <code>%load_ext jupyter_mlops</code> in a cell: every cell you run
          after it appears here with its params and metrics.
        </Message>
      ) : (
        <>
          <CompareBar model={model} />
          <ul className="jp-mlops-runs" aria-label="Cell runs">
            {rows.map(run => (
              <RunRow
                key={rowKey(run)}
                run={run}
                open={model.selected === rowKey(run)}
                model={model}
              />
            ))}
          </ul>
        </>
      )}
      {model.hasMore && (
        <button
          className="jp-mlops-button jp-mlops-more"
          disabled={model.loadingMore}
          onClick={() => void model.loadMore()}
        >
          {model.loadingMore ? 'Loading…' : 'Show older runs'}
        </button>
      )}
    </>
  );
}

function RunRow(props: {
  run: ICellRun;
  open: boolean;
  model: RunsModel;
}): JSX.Element {
  const { run, open, model } = props;
  const toggle = (): void => void model.select(run);
  const count = run.execution_count ?? ' ';
  return (
    <li
      className={`jp-mlops-run${open ? ' jp-mod-open' : ''}`}
      data-record={rowKey(run)}
    >
      <div
        className="jp-mlops-run-row"
        role="button"
        tabIndex={0}
        aria-expanded={open}
        aria-label={`Cell run [${count}] ${run.status.toLowerCase()}`}
        onClick={toggle}
        onKeyDown={onActivate(toggle)}
      >
        <div className="jp-mlops-run-head">
          <span className="jp-mlops-run-count" title="execution count">
            [{count}]
          </span>
          <StatusBadge status={run.status} />
          {run.run_id && (
            <input
              type="checkbox"
              className="jp-mlops-pick"
              checked={model.picked.includes(run.run_id)}
              aria-label={`Compare run [${count}]`}
              title="Pick for comparison"
              onClick={event => event.stopPropagation()}
              onKeyDown={event => event.stopPropagation()}
              onChange={() => model.togglePick(run.run_id)}
            />
          )}
          {run.stale && (
            <span
              className="jp-mlops-stale"
              title={run.stale_reason ?? 'an input changed since it ran'}
            >
              stale
            </span>
          )}
          {run.pending && run.status !== 'RUNNING' && (
            <span
              className="jp-mlops-pending"
              title="in the kernel journal, not yet in MLflow"
            >
              saving
            </span>
          )}
          {run.status === 'RUNNING' ? (
            <Elapsed since={run.start_time} />
          ) : (
            <span className="jp-mlops-run-duration">
              {formatDuration(run.duration_s)}
            </span>
          )}
          <span className="jp-mlops-run-time">
            {formatTime(run.start_time)}
          </span>
        </div>
        {run.label ? (
          <span className="jp-mlops-run-label" title="# mlops: label">
            {run.label}
          </span>
        ) : (
          <code className="jp-mlops-run-source">
            {run.source_preview || ' '}
          </code>
        )}
        {run.stale && run.stale_reason && (
          <div className="jp-mlops-stale-reason" aria-label="why it is stale">
            {run.stale_reason}
          </div>
        )}
        <KeyValues values={run.params} kind="param" limit={6} />
        {run.history && Object.keys(run.history).length > 0 ? (
          <LiveMetrics history={run.history} />
        ) : (
          <KeyValues values={run.metrics} kind="metric" limit={6} />
        )}
        {run.error && <RunError run={run} model={model} />}
      </div>
      {open && <RunDetails model={model} />}
    </li>
  );
}

/** The runs picked for comparison: compare them, or start over. */
function CompareBar(props: { model: RunsModel }): JSX.Element | null {
  const { model } = props;
  const picked = model.picked;
  if (picked.length === 0) {
    return null;
  }
  const comparison = model.comparison;
  return (
    <div className="jp-mlops-compare" aria-label="Comparison">
      <div className="jp-mlops-compare-bar">
        <span className="jp-mlops-muted">
          {picked.length === 1
            ? '1 run picked: pick another to compare'
            : `${picked.length} runs picked`}
        </span>
        <button
          className="jp-mlops-button jp-mlops-mod-small"
          disabled={picked.length < 2 || comparison?.loaded === false}
          onClick={() => void model.compare()}
        >
          Compare
        </button>
        <button
          className="jp-mlops-button jp-mlops-mod-small"
          onClick={() => model.clearPicks()}
        >
          Clear
        </button>
      </div>
      {comparison && !comparison.loaded && <Loading what="the comparison" />}
      {comparison?.error && (
        <ErrorMessage error={comparison.error} what="the comparison" />
      )}
      {comparison?.value && <ComparisonTable found={comparison.value} />}
    </div>
  );
}

/** Params that differ first, then metrics with a bar each, one column per run. */
function ComparisonTable(props: { found: IRunComparison }): JSX.Element {
  const { found } = props;
  const differing = found.differing_params;
  const same = Object.keys(found.params).filter(k => !differing.includes(k));
  const cell = (value: string | number | null): string =>
    value === null
      ? '–'
      : typeof value === 'number'
        ? formatNumber(value)
        : value;
  return (
    <div className="jp-mlops-compare-scroll">
      <table className="jp-mlops-compare-table">
        <thead>
          <tr>
            <th />
            {found.runs.map(run => (
              <th key={run.run_id} title={`${run.label} (${run.run_id})`}>
                {run.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {differing.map(name => (
            <tr key={`p-${name}`} className="jp-mlops-mod-differs">
              <th scope="row" title="a param that differs">
                {name}
              </th>
              {found.params[name].map((v, i) => (
                <td key={i}>{cell(v)}</td>
              ))}
            </tr>
          ))}
          {Object.entries(found.metrics).map(([name, values]) => {
            const known = values.filter((v): v is number => v !== null);
            const top = Math.max(...known.map(Math.abs), 0);
            return (
              <tr key={`m-${name}`} className="jp-mlops-compare-metric">
                <th scope="row">{name}</th>
                {values.map((v, i) => (
                  <td key={i}>
                    {cell(v)}
                    {v !== null && top > 0 && (
                      <span
                        className="jp-mlops-compare-bar-fill"
                        style={{ width: `${(Math.abs(v) / top) * 100}%` }}
                      />
                    )}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
      {same.length > 0 && (
        <div className="jp-mlops-muted">
          The same in every run: {same.join(', ')}
        </div>
      )}
      {differing.length === 0 && Object.keys(found.metrics).length === 0 && (
        <Message>These runs have the same params and no metrics.</Message>
      )}
    </div>
  );
}

/** The metrics a running cell logged so far: each latest value and a line of its steps. */
function LiveMetrics(props: {
  history: { [name: string]: number[][] };
}): JSX.Element {
  const names = Object.keys(props.history).filter(
    name => !name.startsWith('mlops.') && props.history[name].length > 0
  );
  const shown = names.slice(0, 4);
  return (
    <ul className="jp-mlops-live" aria-label="live metrics">
      {shown.map(name => {
        const points = props.history[name];
        const [step, value] = points[points.length - 1];
        return (
          <li
            key={name}
            className="jp-mlops-live-item"
            title={`${name} = ${value} at step ${step} (${points.length} steps so far)`}
          >
            <span className="jp-mlops-kv-key">{name}</span>
            <Sparkline points={points} />
            <span className="jp-mlops-kv-value">{formatNumber(value)}</span>
          </li>
        );
      })}
      {names.length > shown.length && (
        <li className="jp-mlops-kv-more">
          +{names.length - shown.length} more
        </li>
      )}
    </ul>
  );
}

const SPARK_W = 64;
const SPARK_H = 16;

/** A metric's steps as a small line, scaled to its own range. */
function Sparkline(props: { points: number[][] }): JSX.Element {
  const { points } = props;
  const steps = points.map(p => p[0]);
  const values = points.map(p => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(...values), Math.max(...values)];
  const x = (s: number): number =>
    x1 === x0 ? SPARK_W / 2 : ((s - x0) / (x1 - x0)) * (SPARK_W - 2) + 1;
  const y = (v: number): number =>
    y1 === y0
      ? SPARK_H / 2
      : SPARK_H - 1 - ((v - y0) / (y1 - y0)) * (SPARK_H - 2);
  const line = points.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`);
  const [lastX, lastY] = line[line.length - 1].split(',');
  return (
    <svg
      className="jp-mlops-spark"
      width={SPARK_W}
      height={SPARK_H}
      viewBox={`0 0 ${SPARK_W} ${SPARK_H}`}
      aria-hidden="true"
    >
      {points.length > 1 && <polyline points={line.join(' ')} />}
      <circle cx={lastX} cy={lastY} r={1.8} />
    </svg>
  );
}

/** The error and where the cell stopped, with a way to the cell. */
function RunError(props: { run: ICellRun; model: RunsModel }): JSX.Element {
  const { run } = props;
  const place =
    run.error_line !== null
      ? `line ${run.error_line}${run.error_where ? ` in ${run.error_where}()` : ''}`
      : null;
  return (
    <div className="jp-mlops-run-error">
      <div className="jp-mlops-run-error-text">{run.error}</div>
      {place && (
        <div className="jp-mlops-run-error-place">
          <span className="jp-mlops-run-error-line">{place}</span>
          {run.error_code && <code>{run.error_code}</code>}
        </div>
      )}
      <GoToCell run={run} model={props.model} />
    </div>
  );
}

function GoToCell(props: {
  run: ICellRun;
  model: RunsModel;
}): JSX.Element | null {
  const { run, model } = props;
  const [missing, setMissing] = React.useState(false);
  if (!run.cell_id || !model.goToCell) {
    return null;
  }
  const go = async (event: React.MouseEvent): Promise<void> => {
    event.stopPropagation();
    const found = await model.goToCell!(run.cell_id!);
    setMissing(!found);
  };
  return (
    <span className="jp-mlops-goto">
      <button
        className="jp-mlops-button jp-mlops-mod-small"
        onClick={event => void go(event)}
        onKeyDown={event => event.stopPropagation()}
        title="Scroll to this cell and select it"
      >
        Go to cell
      </button>
      {missing && (
        <span className="jp-mlops-muted" role="status">
          {' '}
          The cell is no longer in this notebook.
        </span>
      )}
    </span>
  );
}

function RunDetails(props: { model: RunsModel }): JSX.Element {
  const detail = props.model.detail;
  if (detail.error) {
    return (
      <div className="jp-mlops-detail">
        {detail.error.kind === 'Pending' ? (
          <Message>{detail.error.message}</Message>
        ) : (
          <ErrorMessage error={detail.error} what="this run" />
        )}
      </div>
    );
  }
  if (!detail.value) {
    return (
      <div className="jp-mlops-detail">
        <Loading what="details" />
      </div>
    );
  }
  return <DetailBody run={detail.value} model={props.model} />;
}

function DetailBody(props: { run: IRunDetail; model: RunsModel }): JSX.Element {
  const { run, model } = props;
  const open = model.openInMlflow;
  return (
    <div className="jp-mlops-detail" aria-label="Run details">
      <dl className="jp-mlops-facts">
        <dt>Run</dt>
        <dd>
          <code className="jp-mlops-run-id" title={run.run_id}>
            {run.run_id}
          </code>
        </dd>
        {open && run.run_id && (
          <dd>
            <button
              className="jp-mlops-button jp-mlops-mod-small"
              onClick={event => {
                event.stopPropagation();
                open(run.run_id);
              }}
              onKeyDown={event => event.stopPropagation()}
              title="MLflow's UI on this project's store, at this run, in a JupyterLab tab"
            >
              Open in MLflow
            </button>
          </dd>
        )}
        <dt>Duration</dt>
        <dd>{formatDuration(run.duration_s) || '–'}</dd>
        {run.cell_id && (
          <>
            <dt>Cell</dt>
            <dd>
              <code>{run.cell_id}</code>
            </dd>
          </>
        )}
      </dl>
      {run.error_traceback && (
        <>
          <h4>Traceback</h4>
          <pre className="jp-mlops-source jp-mlops-traceback">
            {run.error_traceback}
          </pre>
        </>
      )}
      <h4>Source</h4>
      <pre className="jp-mlops-source">{run.source ?? run.source_preview}</pre>
      {Object.keys(run.params).length > 0 && (
        <>
          <h4>Params</h4>
          <KeyValues values={run.params} kind="param" />
        </>
      )}
      {Object.keys(run.metrics).length > 0 && (
        <>
          <h4>Metrics</h4>
          <KeyValues values={run.metrics} kind="metric" />
        </>
      )}
      {run.datasets.length > 0 && (
        <>
          <h4>Datasets</h4>
          <ul className="jp-mlops-list">
            {run.datasets.map(d => (
              <li key={d.digest + d.name}>
                {d.name} <code>{d.digest.slice(0, 10)}</code>
                {d.rows !== null && ` · ${d.rows} rows`}
              </li>
            ))}
          </ul>
        </>
      )}
      {run.artifacts.length > 0 && (
        <>
          <h4>Artifacts</h4>
          <ul className="jp-mlops-list">
            {run.artifacts.map(a => (
              <li key={a}>
                <code>{a}</code>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
