import * as React from 'react';

import { CatalogModel } from '../catalogModel';
import { IChoice, askChoice, askTraffic, confirm } from '../dialogs';
import { toApiError } from '../loadable';
import { IDeployment, IModel } from '../tokens';
import { ErrorMessage, Loading, Message, Section, StatusBadge } from './common';

/** Model servers of the project: status, traffic between versions; stop one. */
export function DeploymentsSection(props: {
  model: CatalogModel;
}): JSX.Element {
  const catalog = props.model;
  const slot = catalog.deployments;
  const all = slot.value ?? [];
  const deployments = all.filter(d => d.status !== 'stopped');
  const choices = deployChoices(catalog.models.value ?? []);
  const [deploying, setDeploying] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const deploy = async (): Promise<void> => {
    const spec = await askChoice(
      'Deploy a model',
      'Serve',
      choices,
      'Deploy',
      'A model server starts on 127.0.0.1 and captures its requests for monitoring.'
    );
    if (!spec) {
      return;
    }
    setDeploying(true);
    setError(null);
    try {
      await catalog.deploy(spec);
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setDeploying(false);
    }
  };
  const actions = (
    <button
      className="jp-mlops-button jp-mlops-mod-small"
      disabled={deploying || choices.length === 0}
      onClick={() => void deploy()}
      title={
        choices.length ? 'Serve a registered version' : 'Register a model first'
      }
    >
      {deploying ? 'Deploying…' : 'Deploy…'}
    </button>
  );
  return (
    <Section
      id="deployments"
      title="Deployments"
      count={slot.value ? deployments.length : undefined}
      actions={actions}
    >
      {slot.error && <ErrorMessage error={slot.error} what="deployments" />}
      {error && (
        <div className="jp-mlops-run-error" role="alert">
          {error}
        </div>
      )}
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
  const model = (catalog.models.value ?? []).find(m => m.name === d.model);
  const act = async (change: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await change();
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };
  const stop = async (): Promise<void> => {
    const ok = await confirm(
      `Stop deployment ${d.id}`,
      `The server of ${d.spec} at ${d.url} stops answering requests.`,
      'Stop'
    );
    if (ok) {
      await act(() => catalog.stop(d.id));
    }
  };
  const traffic = async (): Promise<void> => {
    const versions = modelVersions(model, d);
    const chosen = await askTraffic(d.id, versions, d.weights);
    if (chosen) {
      await act(() => catalog.setTraffic(d.id, chosen));
    }
  };
  const switchAll = async (): Promise<void> => {
    const spec = await askChoice(
      `Switch ${d.id}`,
      'Send all traffic to',
      switchChoices(model, d),
      'Switch all traffic',
      'The version is loaded before the switch, so no request goes unanswered.'
    );
    if (spec) {
      await act(() => catalog.switchTo(d.id, spec));
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
      {d.status === 'running' && (
        <div className="jp-mlops-card-actions">
          <button
            className="jp-mlops-button jp-mlops-mod-small"
            disabled={busy}
            onClick={() => void traffic()}
            aria-label={`Change the traffic of ${d.id}`}
          >
            Traffic…
          </button>
          <button
            className="jp-mlops-button jp-mlops-mod-small"
            disabled={busy}
            onClick={() => void switchAll()}
            aria-label={`Switch all traffic of ${d.id}`}
          >
            Switch…
          </button>
        </div>
      )}
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

/** What can be deployed: each alias (by name, so a later promotion is seen) and version. */
function deployChoices(models: IModel[]): IChoice[] {
  const out: IChoice[] = [];
  for (const m of models) {
    for (const [alias, version] of Object.entries(m.aliases).sort()) {
      out.push({
        value: `${m.name}@${alias}`,
        label: `${m.name}@${alias} (v${version})`
      });
    }
    for (const v of m.versions) {
      out.push({
        value: `${m.name}/${v.version}`,
        label: `${m.name} v${v.version}`
      });
    }
  }
  return out;
}

function modelVersions(model: IModel | undefined, d: IDeployment): string[] {
  const versions = new Set([
    ...Object.keys(d.weights),
    ...(model?.versions ?? []).map(v => v.version)
  ]);
  return [...versions].sort((a, b) => Number(a) - Number(b));
}

function switchChoices(model: IModel | undefined, d: IDeployment): IChoice[] {
  const out: IChoice[] = [];
  for (const [alias, version] of Object.entries(model?.aliases ?? {}).sort()) {
    out.push({
      value: `${d.model}@${alias}`,
      label: `@${alias} (v${version})`
    });
  }
  for (const v of modelVersions(model, d)) {
    const share = d.weights[v];
    const now = share ? ` · now ${Math.round(share * 1000) / 10}%` : '';
    out.push({ value: v, label: `v${v}${now}` });
  }
  return out;
}
