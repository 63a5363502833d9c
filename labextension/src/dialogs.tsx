import * as React from 'react';

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ApiError } from './api';
import { IGateResult } from './tokens';

let formCount = 0;

/** What MLflow takes as an alias, said where the input's pattern refuses one. */
const ALIAS_RULE =
  'An alias starts with a letter and holds only letters, digits, _ and -.';

export interface IPromoteChoice {
  alias: string;
  reason: string;
}

/** The body of the promote dialog: which alias, and why. */
class PromoteForm extends Widget implements Dialog.IBodyWidget<IPromoteChoice> {
  constructor(aliases: string[], alias: string) {
    super({ node: document.createElement('form') });
    this.addClass('jp-mlops-form');
    const listId = `jp-mlops-aliases-${++formCount}`;
    // Chromium compiles `pattern` with the v flag, where a class's "-" must be escaped;
    // while the form is invalid, JupyterLab's dialog keeps its accept button disabled
    this.node.innerHTML = `
      <label>Alias
        <input name="alias" class="jp-mod-styled" list="${listId}" required
               pattern="[A-Za-z][A-Za-z0-9_\\-]*" title="${ALIAS_RULE}" />
      </label>
      <div class="jp-mlops-run-error" role="alert" hidden></div>
      <datalist id="${listId}"></datalist>
      <label>Reason
        <input name="reason" class="jp-mod-styled" placeholder="why this version" />
      </label>`;
    const list = this.node.querySelector('datalist')!;
    for (const name of aliases) {
      const option = document.createElement('option');
      option.value = name;
      list.appendChild(option);
    }
    const input = this.input('alias');
    input.value = alias;
    // say why the button is disabled
    const said = this.node.querySelector('[role="alert"]') as HTMLElement;
    const check = (): void => {
      const value = input.value.trim();
      said.textContent = value
        ? `"${value}" is no alias. ${ALIAS_RULE}`
        : `Name an alias. ${ALIAS_RULE}`;
      said.hidden = input.validity.valid;
    };
    input.addEventListener('input', check);
    (this.node as HTMLFormElement).addEventListener('submit', event =>
      event.preventDefault()
    );
  }

  getValue(): IPromoteChoice {
    return {
      alias: this.input('alias').value.trim(),
      reason: this.input('reason').value
    };
  }

  private input(name: string): HTMLInputElement {
    return this.node.querySelector(`input[name="${name}"]`) as HTMLInputElement;
  }
}

/** Asks which alias to move to `version`; null when the user cancels. */
export async function askPromotion(
  model: string,
  version: string,
  aliases: string[]
): Promise<IPromoteChoice | null> {
  const result = await showDialog<IPromoteChoice>({
    title: `Promote ${model} version ${version}`,
    body: new PromoteForm(aliases, aliases[0] ?? 'champion'),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Promote' })],
    focusNodeSelector: 'input[name="alias"]'
  });
  if (!result.button.accept || !result.value || !result.value.alias) {
    return null;
  }
  return result.value;
}

/** Asks a yes/no question before a change that moves traffic or stops a server. */
export async function confirm(
  title: string,
  body: string,
  label: string
): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

/** The body of the refusal dialog: why the gates refused, and a reason to force it. */
class ForceForm extends ReactWidget implements Dialog.IBodyWidget<string> {
  constructor(
    private readonly _error: ApiError,
    private readonly _reason: string
  ) {
    super();
    this.addClass('jp-mlops-form');
  }

  render(): JSX.Element {
    // the message's own hint names force=True; here the button below is the way
    const message = this._error.message
      .split('\n')
      .filter(line => !line.includes('force=True'))
      .join('\n');
    return (
      <>
        <GateList message={message} gates={this._error.failed} />
        <label>
          Reason to force it (required)
          <input
            name="force-reason"
            className="jp-mod-styled"
            required
            placeholder="why this version goes live anyway"
            defaultValue={this._reason}
          />
        </label>
      </>
    );
  }

  getValue(): string {
    const input = this.node.querySelector('input[name="force-reason"]');
    return (input as HTMLInputElement | null)?.value.trim() ?? '';
  }
}

/**
 * Shows why the gates refused a promotion and offers to force it with a reason; the
 * reason, or null when the user closes (a force without a reason is not offered).
 */
export async function askForce(
  error: ApiError,
  reason: string
): Promise<string | null> {
  for (;;) {
    const result = await showDialog<string>({
      title: 'Promotion refused',
      body: new ForceForm(error, reason),
      buttons: [
        Dialog.cancelButton({ label: 'Close' }),
        Dialog.warnButton({ label: 'Force promotion' })
      ],
      focusNodeSelector: 'input[name="force-reason"]'
    });
    if (!result.button.accept) {
      return null;
    }
    if (result.value) {
      return result.value;
    }
    reason = '';
  }
}

/** Shows why the gates refused a promotion, one line per failed gate. */
export async function showRefusal(error: ApiError): Promise<void> {
  await showDialog({
    title: 'Promotion refused',
    body: <GateList message={error.message} gates={error.failed} />,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

export function GateList(props: {
  message: string;
  gates: IGateResult[];
}): JSX.Element {
  // the message lists the failed gates too; shown once, as the list below
  const lines = props.message
    .split('\n')
    .filter(line => !(props.gates.length && line.trim().startsWith('- ')));
  return (
    <div className="jp-mlops-refusal">
      <p>{lines.join('\n')}</p>
      {props.gates.length > 0 && (
        <ul className="jp-mlops-gates">
          {props.gates.map(gate => (
            <li
              key={gate.gate}
              className={gate.passed ? 'jp-mod-passed' : 'jp-mod-failed'}
            >
              <strong>{gate.gate}</strong>: {gate.evidence}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Percent inputs, one per version, with their running total. */
function TrafficInputs(props: {
  versions: string[];
  percents: { [version: string]: number };
  error: string;
}): JSX.Element {
  const [values, setValues] = React.useState(props.percents);
  const total = props.versions.reduce((sum, v) => sum + (values[v] || 0), 0);
  return (
    <>
      {props.versions.map(v => (
        <label key={v} className="jp-mlops-form-row">
          v{v}
          <input
            name={`weight-${v}`}
            data-version={v}
            className="jp-mod-styled"
            type="number"
            min={0}
            max={100}
            step="any"
            defaultValue={props.percents[v] ?? 0}
            aria-label={`percent of requests to v${v}`}
            onChange={event =>
              setValues({ ...values, [v]: Number(event.target.value) })
            }
          />
          %
        </label>
      ))}
      <div className="jp-mlops-muted" aria-label="total">
        total {Math.round(total * 100) / 100}%
      </div>
      {props.error && (
        <div className="jp-mlops-run-error" role="alert">
          {props.error}
        </div>
      )}
    </>
  );
}

class TrafficForm
  extends ReactWidget
  implements Dialog.IBodyWidget<{ [version: string]: number }>
{
  constructor(
    private readonly _versions: string[],
    private readonly _percents: { [version: string]: number },
    private readonly _error: string
  ) {
    super();
    this.addClass('jp-mlops-form');
  }

  render(): JSX.Element {
    return (
      <TrafficInputs
        versions={this._versions}
        percents={this._percents}
        error={this._error}
      />
    );
  }

  getValue(): { [version: string]: number } {
    const out: { [version: string]: number } = {};
    this.node.querySelectorAll('input[data-version]').forEach(node => {
      const input = node as HTMLInputElement;
      out[input.dataset.version!] =
        input.value.trim() === '' ? NaN : Number(input.value);
    });
    return out;
  }
}

/** Why `percents` cannot be a deployment's traffic, or '' when they can. */
export function trafficProblem(percents: {
  [version: string]: number;
}): string {
  for (const [version, percent] of Object.entries(percents)) {
    if (!Number.isFinite(percent)) {
      return `Give v${version} a share in percent (0 for none).`;
    }
    if (percent < 0 || percent > 100) {
      return `The share of v${version} must be between 0 and 100%, not ${percent}%.`;
    }
  }
  const total = Object.values(percents).reduce((a, b) => a + b, 0);
  if (Math.abs(total - 100) > 0.01) {
    return `The shares must add up to 100%; they add up to ${Math.round(total * 100) / 100}%.`;
  }
  return '';
}

function describeShares(percents: { [version: string]: number }): string {
  return Object.entries(percents)
    .filter(([, p]) => p > 0)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([v, p]) => `v${v} ${Math.round(p * 100) / 100}%`)
    .join(', ');
}

/**
 * Asks for a deployment's new traffic shares, then confirms the move; the percents to
 * send (zero shares left out), or null when the user cancels at either step.
 */
export async function askTraffic(
  deployment: string,
  versions: string[],
  weights: { [version: string]: number }
): Promise<{ [version: string]: number } | null> {
  const current: { [version: string]: number } = {};
  for (const v of versions) {
    current[v] = Math.round((weights[v] ?? 0) * 1000) / 10;
  }
  let shown = current;
  let error = '';
  for (;;) {
    const result = await showDialog<{ [version: string]: number }>({
      title: `Traffic of ${deployment}`,
      body: new TrafficForm(versions, shown, error),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Review' })],
      focusNodeSelector: 'input[data-version]'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    shown = result.value;
    error = trafficProblem(shown);
    if (error) {
      continue;
    }
    const chosen = Object.fromEntries(
      Object.entries(shown).filter(([, p]) => p > 0)
    );
    const ok = await confirm(
      `Move the traffic of ${deployment}`,
      `From ${describeShares(current)} to ${describeShares(chosen)}. Requests follow the new shares at once.`,
      'Move traffic'
    );
    return ok ? chosen : null;
  }
}

/** One choice of a select: what is sent, and what the user reads. */
export interface IChoice {
  value: string;
  label: string;
}

class ChoiceForm extends ReactWidget implements Dialog.IBodyWidget<string> {
  constructor(
    private readonly _label: string,
    private readonly _choices: IChoice[],
    private readonly _note: string
  ) {
    super();
    this.addClass('jp-mlops-form');
  }

  render(): JSX.Element {
    return (
      <>
        <label>
          {this._label}
          <select name="choice" className="jp-mod-styled">
            {this._choices.map(c => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
        </label>
        {this._note && <p className="jp-mlops-muted">{this._note}</p>}
      </>
    );
  }

  getValue(): string {
    const select = this.node.querySelector('select[name="choice"]');
    return (select as HTMLSelectElement | null)?.value ?? '';
  }
}

/** Asks which of `choices` to take, behind a button that says what it does. */
export async function askChoice(
  title: string,
  label: string,
  choices: IChoice[],
  action: string,
  note = ''
): Promise<string | null> {
  const result = await showDialog<string>({
    title,
    body: new ChoiceForm(label, choices, note),
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: action })],
    focusNodeSelector: 'select[name="choice"]'
  });
  return result.button.accept && result.value ? result.value : null;
}
