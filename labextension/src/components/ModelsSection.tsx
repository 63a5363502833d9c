import * as React from 'react';

import { CatalogModel } from '../catalogModel';
import { GateList, askPromotion, confirm, showRefusal } from '../dialogs';
import { toApiError } from '../loadable';
import { IGateResult, IModel, IModelVersion } from '../tokens';
import {
  ErrorMessage,
  Loading,
  Message,
  Section,
  formatDateTime
} from './common';

const USUAL_ALIASES = ['champion', 'challenger', 'staging'];

/** Registered models: who holds each alias, every version's gates; promote and roll back. */
export function ModelsSection(props: { model: CatalogModel }): JSX.Element {
  const slot = props.model.models;
  const models = slot.value ?? [];
  return (
    <Section
      id="models"
      title="Models"
      count={slot.value ? models.length : undefined}
    >
      {slot.error && <ErrorMessage error={slot.error} what="models" />}
      {!slot.loaded && <Loading what="models" />}
      {slot.loaded && !slot.error && models.length === 0 && (
        <Message>
          No registered models yet.{' '}
          <code>jupyter_mlops.register(packaged)</code> or{' '}
          <code>%mlops register</code> adds one.
        </Message>
      )}
      <ul className="jp-mlops-cards" aria-label="Models">
        {models.map(m => (
          <ModelCard key={m.name} model={m} catalog={props.model} />
        ))}
      </ul>
    </Section>
  );
}

interface INote {
  kind: 'ok' | 'error';
  text: string;
  gates: IGateResult[];
}

function ModelCard(props: {
  model: IModel;
  catalog: CatalogModel;
}): JSX.Element {
  const { model, catalog } = props;
  const [busy, setBusy] = React.useState(false);
  const [note, setNote] = React.useState<INote | null>(null);
  const aliases = Object.entries(model.aliases).sort(([a], [b]) =>
    a.localeCompare(b)
  );

  const promote = async (version: IModelVersion): Promise<void> => {
    const choices = [
      ...new Set([...Object.keys(model.aliases), ...USUAL_ALIASES])
    ];
    const choice = await askPromotion(model.name, version.version, choices);
    if (!choice) {
      return;
    }
    setBusy(true);
    try {
      const done = await catalog.promote(model.name, {
        version: version.version,
        alias: choice.alias,
        reason: choice.reason
      });
      const from = done.previous ? ` (was version ${done.previous})` : '';
      setNote({
        kind: 'ok',
        text: `${done.alias} → version ${done.version}${from}: gates ${done.verdict}.`,
        gates: done.gates
      });
    } catch (error) {
      const err = toApiError(error);
      setNote({ kind: 'error', text: err.message, gates: err.failed });
      if (err.status === 409) {
        void showRefusal(err);
      }
    } finally {
      setBusy(false);
    }
  };

  const rollback = async (alias: string, version: string): Promise<void> => {
    const ok = await confirm(
      `Roll back ${model.name}@${alias}`,
      `${alias} now points at version ${version}. Move it back to the version that held it before?`,
      'Roll back'
    );
    if (!ok) {
      return;
    }
    setBusy(true);
    try {
      const move = await catalog.rollback(model.name, alias);
      setNote({
        kind: 'ok',
        text: `${alias} rolled back from version ${move.from_version ?? '–'} to ${move.to_version ?? '–'}.`,
        gates: []
      });
    } catch (error) {
      const err = toApiError(error);
      setNote({ kind: 'error', text: err.message, gates: err.failed });
    } finally {
      setBusy(false);
    }
  };

  return (
    <li className="jp-mlops-card" data-model={model.name}>
      <div className="jp-mlops-card-head">
        <span className="jp-mlops-card-title">{model.name}</span>
        <span className="jp-mlops-muted">{model.versions.length} versions</span>
      </div>
      {aliases.length === 0 ? (
        <div className="jp-mlops-muted">No aliases yet: promote a version.</div>
      ) : (
        <ul
          className="jp-mlops-aliases"
          aria-label={`aliases of ${model.name}`}
        >
          {aliases.map(([alias, version]) => (
            <li key={alias} className="jp-mlops-alias" data-alias={alias}>
              <span className="jp-mlops-alias-name">@{alias}</span>
              <span className="jp-mlops-alias-version">v{version}</span>
              <button
                className="jp-mlops-button jp-mlops-mod-small"
                disabled={busy}
                onClick={() => void rollback(alias, version)}
                title={`Move ${alias} back to its previous version`}
              >
                Roll back
              </button>
            </li>
          ))}
        </ul>
      )}
      <ul
        className="jp-mlops-versions"
        aria-label={`versions of ${model.name}`}
      >
        {model.versions.map(v => (
          <VersionRow
            key={v.version}
            version={v}
            busy={busy}
            onPromote={() => void promote(v)}
          />
        ))}
      </ul>
      {note && (
        <div
          className={`jp-mlops-note jp-mlops-mod-${note.kind === 'ok' ? 'ok' : 'bad'}`}
          role={note.kind === 'error' ? 'alert' : 'status'}
        >
          <GateList message={note.text} gates={note.gates} />
        </div>
      )}
      {model.history.length > 0 && (
        <details className="jp-mlops-history">
          <summary>Alias history</summary>
          <ul className="jp-mlops-list">
            {model.history
              .slice(-5)
              .reverse()
              .map((move, i) => (
                <li key={i}>
                  {move.kind} @{move.alias}: v{move.from_version ?? '–'} → v
                  {move.to_version ?? '–'} · {move.gates}
                  {move.reason && ` · “${move.reason}”`} ·{' '}
                  <span className="jp-mlops-muted">
                    {move.who}, {formatDateTime(Date.parse(move.when))}
                  </span>
                </li>
              ))}
          </ul>
        </details>
      )}
    </li>
  );
}

function VersionRow(props: {
  version: IModelVersion;
  busy: boolean;
  onPromote: () => void;
}): JSX.Element {
  const { version: v } = props;
  const gates = Object.entries(v.gates);
  return (
    <li className="jp-mlops-version" data-version={v.version}>
      <span className="jp-mlops-version-name">v{v.version}</span>
      {v.aliases.map(alias => (
        <span key={alias} className="jp-mlops-tag">
          @{alias}
        </span>
      ))}
      {v.parity_passed !== null && (
        <span
          className={`jp-mlops-tag jp-mlops-mod-${v.parity_passed ? 'ok' : 'bad'}`}
          title="ONNX parity check at packaging"
        >
          parity {v.parity_passed ? '✓' : '✗'}
        </span>
      )}
      <button
        className="jp-mlops-button jp-mlops-mod-small"
        disabled={props.busy}
        onClick={props.onPromote}
        aria-label={`Promote version ${v.version}`}
      >
        Promote
      </button>
      {gates.length > 0 && (
        <ul className="jp-mlops-gate-verdicts" aria-label="gate results">
          {gates.map(([alias, verdict]) => (
            <li key={alias} title={verdict}>
              gates @{alias}: {verdict}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}
