import * as React from 'react';

import { CatalogModel } from '../catalogModel';
import { confirm } from '../dialogs';
import { toApiError } from '../loadable';
import { IDeployment } from '../tokens';
import { ErrorMessage, Loading, Message, Section, StatusBadge } from './common';

/** Model servers of the project: status, traffic between versions; stop one. */
export function DeploymentsSection(props: {
  model: CatalogModel;
}): JSX.Element {
  const slot = props.model.deployments;
  const all = slot.value ?? [];
  const deployments = all.filter(d => d.status !== 'stopped');
  return (
    <Section
      id="deployments"
      title="Deployments"
      count={slot.value ? deployments.length : undefined}
    >
      {slot.error && <ErrorMessage error={slot.error} what="deployments" />}
      {!slot.loaded && <Loading what="deployments" />}
      {slot.loaded && !slot.error && deployments.length === 0 && (
        <Message>
          No model is being served. <code>%mlops deploy digits@champion</code>{' '}
          serves one on this machine.
        </Message>
      )}
      <ul className="jp-mlops-cards" aria-label="Deployments">
        {deployments.map(d => (
          <DeploymentCard key={d.id} deployment={d} catalog={props.model} />
        ))}
      </ul>
    </Section>
  );
}

function DeploymentCard(props: {
  deployment: IDeployment;
  catalog: CatalogModel;
}): JSX.Element {
  const { deployment: d, catalog } = props;
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const stop = async (): Promise<void> => {
    const ok = await confirm(
      `Stop deployment ${d.id}`,
      `The server of ${d.spec} at ${d.url} stops answering requests.`,
      'Stop'
    );
    if (!ok) {
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await catalog.stop(d.id);
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="jp-mlops-card" data-deployment={d.id}>
      <div className="jp-mlops-card-head">
        <span className="jp-mlops-card-title">{d.id}</span>
        <StatusBadge status={d.status} />
        <button
          className="jp-mlops-button jp-mlops-mod-small jp-mlops-mod-warn"
          disabled={busy}
          onClick={() => void stop()}
          aria-label={`Stop deployment ${d.id}`}
        >
          Stop
        </button>
      </div>
      <div className="jp-mlops-muted">
        {d.spec}
        {d.follow && ` · follows @${d.follow}`} ·{' '}
        <a href={d.url} target="_blank" rel="noreferrer">
          {d.url}
        </a>
      </div>
      <Traffic weights={d.weights} />
      {error && (
        <div className="jp-mlops-run-error" role="alert">
          {error}
        </div>
      )}
    </li>
  );
}

/** The share of requests each version gets, as a bar and in words. */
function Traffic(props: {
  weights: { [version: string]: number };
}): JSX.Element {
  const entries = Object.entries(props.weights).sort(
    ([a], [b]) => Number(a) - Number(b)
  );
  return (
    <div className="jp-mlops-traffic" aria-label="traffic">
      <div className="jp-mlops-traffic-bar" aria-hidden="true">
        {entries.map(([version, share], i) => (
          <span
            key={version}
            className={`jp-mlops-traffic-part jp-mlops-part-${i % 4}`}
            style={{ width: `${share * 100}%` }}
          />
        ))}
      </div>
      <div className="jp-mlops-traffic-legend">
        {entries.map(([version, share]) => (
          <span key={version}>
            v{version}: {Math.round(share * 1000) / 10}%
          </span>
        ))}
      </div>
    </div>
  );
}
