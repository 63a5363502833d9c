import * as React from 'react';

import { CatalogModel } from '../catalogModel';
import { ILoadable, toApiError } from '../loadable';
import { IMonitorRun, IMonitorStatus } from '../tokens';
import {
  ErrorMessage,
  Loading,
  Message,
  Section,
  formatDateTime
} from './common';

function percent(share: number | null | undefined): string {
  return share === null || share === undefined
    ? '–'
    : `${Math.round(share * 100)}%`;
}

/** Drift status of each live deployment, with the project's alerts as a badge. */
export function MonitoringSection(props: { model: CatalogModel }): JSX.Element {
  const { model } = props;
  const alerts = model.alerts.value;
  const count = alerts?.count ?? 0;
  const badge =
    count > 0 ? (
      <span
        className="jp-mlops-alert-badge"
        aria-label={`${count} alerts`}
        title="drift alerts"
      >
        {count}
      </span>
    ) : undefined;
  const entries = [...model.monitors.entries()];
  return (
    <Section id="monitoring" title="Monitoring" badge={badge}>
      {model.alerts.error && (
        <ErrorMessage error={model.alerts.error} what="alerts" />
      )}
      {!model.deployments.loaded && <Loading what="monitoring" />}
      {model.deployments.loaded && entries.length === 0 && (
        <Message>
          Nothing to monitor: no deployment is running. Once one serves traffic,{' '}
          <code>%mlops monitor NAME</code> checks it for drift.
        </Message>
      )}
      <ul className="jp-mlops-cards" aria-label="Monitoring">
        {entries.map(([id, slot]) => (
          <MonitorCard key={id} id={id} slot={slot} catalog={model} />
        ))}
      </ul>
      {alerts && alerts.alerts.length > 0 && (
        <details className="jp-mlops-history">
          <summary>Latest alerts</summary>
          <ul className="jp-mlops-list">
            {alerts.alerts.slice(0, 5).map(a => (
              <li key={a.run_id + a.time}>
                {a.deployment} v{a.version}: {percent(a.share_drifted)} drifted
                ({a.drifted_columns.slice(0, 4).join(', ')}
                {a.drifted_columns.length > 4 ? ', …' : ''}) →{' '}
                {a.actions.join(', ') || 'alert'}{' '}
                <span className="jp-mlops-muted">
                  {formatDateTime(Date.parse(a.time))}
                </span>
              </li>
            ))}
          </ul>
        </details>
      )}
    </Section>
  );
}

/** The labelled quality of the window, the worst slices and disparities, in one line each. */
function Quality(props: { latest: IMonitorRun }): JSX.Element | null {
  const quality = props.latest.quality ?? {};
  const labelled = quality.labelled_rows;
  if (!labelled) {
    return null;
  }
  const metrics = ['accuracy', 'f1', 'mae', 'rmse', 'r2'].filter(
    m => quality[m] !== undefined
  );
  const fairness = Object.entries(props.latest.fairness ?? {});
  return (
    <div className="jp-mlops-quality" aria-label="quality">
      <div>
        {labelled} labelled ·{' '}
        {metrics.map(m => `${m} ${quality[m].toFixed(3)}`).join(' · ')}
      </div>
      {fairness.length > 0 && (
        <div className="jp-mlops-muted" aria-label="fairness">
          {fairness
            .map(
              ([name, value]) =>
                `${name
                  .replace('slice_min_', 'worst slice ')
                  .replace('slice_max_', 'worst slice ')
                  .replace('fairness_', '')
                  .replace(/_/g, ' ')} ${value.toFixed(3)}`
            )
            .join(' · ')}
        </div>
      )}
    </div>
  );
}

function MonitorCard(props: {
  id: string;
  slot: ILoadable<IMonitorStatus>;
  catalog: CatalogModel;
}): JSX.Element {
  const { id, slot, catalog } = props;
  const status = slot.value;
  const latest = status?.latest ?? null;
  const drifted = latest?.alert ?? false;
  const reasons = (latest?.reasons ?? []).filter(r => r !== 'drift');
  const [busy, setBusy] = React.useState(false);
  const [auditError, setAuditError] = React.useState<string | null>(null);
  const [checking, setChecking] = React.useState(false);
  const [checked, setChecked] = React.useState<string | null>(null);
  const check = async (): Promise<void> => {
    setChecking(true);
    setAuditError(null);
    setChecked(null);
    try {
      const found = await catalog.checkNow(id);
      const drifted = found.drift.drifted_columns.length;
      setChecked(
        `checked ${found.rows} rows: ${drifted ? `${drifted} column(s) drifted` : 'no drift'}` +
          (found.actions.length ? ` → ${found.actions.join(', ')}` : '')
      );
    } catch (err) {
      setAuditError(toApiError(err).message);
    } finally {
      setChecking(false);
    }
  };
  const audit = async (): Promise<void> => {
    if (!status || !latest) {
      return;
    }
    setBusy(true);
    setAuditError(null);
    try {
      await catalog.audit(status.model, latest.version);
    } catch (err) {
      setAuditError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="jp-mlops-card" data-monitor={id} tabIndex={0}>
      <div className="jp-mlops-card-head">
        <span className="jp-mlops-card-title">{id}</span>
        {latest && (
          <span
            className={`jp-mlops-status jp-mlops-mod-${drifted ? 'bad' : 'ok'}`}
          >
            {drifted ? (reasons.length ? 'alert' : 'drift') : 'no drift'}
          </span>
        )}
        {status && status.alerts.length > 0 && (
          <span
            className="jp-mlops-alert-badge"
            title="alerts of this deployment"
          >
            {status.alerts.length}
          </span>
        )}
      </div>
      {slot.error && <ErrorMessage error={slot.error} what="its monitoring" />}
      {status && !latest && (
        <div className="jp-mlops-muted">
          Never checked. <code>%mlops monitor {id}</code> compares its traffic
          with the training data.
        </div>
      )}
      {latest && (
        <div className="jp-mlops-muted">
          v{latest.version} · {latest.window} · {latest.rows ?? '–'} rows ·{' '}
          {percent(latest.share_drifted)} of columns drifted
          {latest.latency_p95_ms !== null &&
            ` · p95 ${latest.latency_p95_ms.toFixed(1)} ms`}
          {latest.error_rate !== null &&
            ` · errors ${percent(latest.error_rate)}`}{' '}
          · {formatDateTime(latest.time)}
        </div>
      )}
      {latest && <Quality latest={latest} />}
      {latest?.attribution_shift !== undefined &&
        latest.attribution_shift !== null && (
          <div className="jp-mlops-muted">
            attribution shift {latest.attribution_shift.toFixed(2)}
          </div>
        )}
      {reasons.map(r => (
        <div key={r} className="jp-mlops-run-error" aria-label="policy reason">
          {r}
        </div>
      ))}
      {checked && (
        <div className="jp-mlops-muted" role="status">
          {checked}
        </div>
      )}
      <div className="jp-mlops-card-actions">
        <button
          className="jp-mlops-button jp-mlops-mod-small"
          disabled={checking}
          onClick={() => void check()}
          aria-label={`Check ${id} now`}
          title="Compare its recent traffic with the training data now; the monitoring policy acts as on a scheduled check"
        >
          {checking ? 'Checking…' : 'Check now'}
        </button>
        {latest && (
          <button
            className="jp-mlops-button jp-mlops-mod-small"
            disabled={busy}
            onClick={() => void audit()}
            aria-label={`Audit report of ${status?.model} v${latest.version}`}
            title="Write the audit report of the version this deployment served, and open it"
          >
            {busy ? 'Writing…' : 'Audit report'}
          </button>
        )}
      </div>
      {auditError && (
        <div className="jp-mlops-run-error" role="alert">
          {auditError}
        </div>
      )}
    </li>
  );
}
