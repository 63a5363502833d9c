import * as React from 'react';

import { CatalogModel } from '../catalogModel';
import { ILoadable } from '../loadable';
import { IMonitorStatus } from '../tokens';
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
          <MonitorCard key={id} id={id} slot={slot} />
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

function MonitorCard(props: {
  id: string;
  slot: ILoadable<IMonitorStatus>;
}): JSX.Element {
  const { id, slot } = props;
  const status = slot.value;
  const latest = status?.latest ?? null;
  const drifted = latest?.alert ?? false;
  return (
    <li className="jp-mlops-card" data-monitor={id} tabIndex={0}>
      <div className="jp-mlops-card-head">
        <span className="jp-mlops-card-title">{id}</span>
        {latest && (
          <span
            className={`jp-mlops-status jp-mlops-mod-${drifted ? 'bad' : 'ok'}`}
          >
            {drifted ? 'drift' : 'no drift'}
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
    </li>
  );
}
