import * as React from 'react';

import { CatalogModel } from '../catalogModel';
import { GateList, askForce, askPromotion, confirm } from '../dialogs';
import { toApiError } from '../loadable';
import { IAliasMove, IGateResult, IModel, IModelVersion } from '../tokens';
import {
  ErrorMessage,
  Loading,
  Message,
  KeyValues,
  Section,
  formatDateTime
} from './common';

const VERDICT: { [verdict: string]: string } = {
  passed: 'gates passed',
  'no gates': 'no gates configured',
  forced: 'forced past failed gates',
  refused: 'refused by its gates'
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

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
    const send = async (force: boolean, reason: string): Promise<void> => {
      const done = await catalog.promote(model.name, {
        version: version.version,
        alias: choice.alias,
        reason,
        force
      });
      const from = done.previous ? ` (was version ${done.previous})` : '';
      setNote({
        kind: 'ok',
        text: `${done.alias} → version ${done.version}${from}: ${VERDICT[done.verdict] ?? done.verdict}.`,
        gates: done.gates
      });
    };
    try {
      await send(false, choice.reason);
    } catch (error) {
      const err = toApiError(error);
      setNote({ kind: 'error', text: err.message, gates: err.failed });
      if (err.status === 409) {
        const reason = await askForce(err, choice.reason);
        if (reason !== null) {
          try {
            await send(true, reason);
          } catch (again) {
            const e = toApiError(again);
            setNote({ kind: 'error', text: e.message, gates: e.failed });
          }
        }
      }
    } finally {
      setBusy(false);
    }
  };

  const rollback = async (alias: string, version: string): Promise<void> => {
    const target = model.rollback_to?.[alias];
    if (!target) {
      return;
    }
    const ok = await confirm(
      `Roll back ${model.name}@${alias}`,
      `Move ${alias} from version ${version} back to version ${target}, which held it before?`,
      `Roll back to v${target}`
    );
    if (!ok) {
      return;
    }
    setBusy(true);
    try {
      const move = await catalog.rollback(model.name, alias);
      setNote({
        kind: 'ok',
        text: `${alias} rolled back from version ${move.from_version} to ${move.to_version}.`,
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
        <span className="jp-mlops-muted">
          {plural(model.versions.length, 'version')}
        </span>
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
                disabled={busy || !model.rollback_to?.[alias]}
                onClick={() => void rollback(alias, version)}
                title={
                  model.rollback_to?.[alias]
                    ? `Move ${alias} back to version ${model.rollback_to[alias]}`
                    : `Nothing to roll back to: no other version held ${alias} before`
                }
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
                  {describeMove(move)}
                  {move.kind === 'promote' &&
                    ` · ${VERDICT[move.gates] ?? move.gates}`}
                  {move.reason &&
                    move.reason !== 'rollback' &&
                    ` · “${move.reason}”`}{' '}
                  ·{' '}
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

function describeMove(move: IAliasMove): string {
  const to = `v${move.to_version}`;
  if (move.kind === 'rollback') {
    return `@${move.alias} rolled back from v${move.from_version} to ${to}`;
  }
  if (!move.from_version) {
    return `@${move.alias} set to ${to}`;
  }
  if (move.from_version === move.to_version) {
    return `@${move.alias} re-promoted ${to}`;
  }
  return `@${move.alias} moved from v${move.from_version} to ${to}`;
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
      <KeyValues values={v.metrics ?? {}} kind="metric" limit={4} />
      {gates.length > 0 && (
        <ul className="jp-mlops-gate-verdicts" aria-label="gate results">
          {gates.map(([alias, verdict]) => (
            <li key={alias} title={verdict}>
              @{alias}: {VERDICT[verdict] ?? verdict}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}
