import * as React from 'react';

import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';

import { ApiError } from '../api';

/** A collapsible section with a heading that a keyboard can reach. */
export function Section(props: {
  id: string;
  title: string;
  count?: number;
  badge?: React.ReactNode;
  actions?: React.ReactNode;
  children: React.ReactNode;
  initiallyOpen?: boolean;
}): JSX.Element {
  const [open, setOpen] = React.useState(props.initiallyOpen ?? true);
  const Caret = open ? caretDownIcon : caretRightIcon;
  const bodyId = `jp-mlops-section-${props.id}`;
  return (
    <section className="jp-mlops-section" data-section={props.id}>
      <div className="jp-mlops-section-header">
        <button
          className="jp-mlops-section-toggle"
          aria-expanded={open}
          aria-controls={bodyId}
          onClick={() => setOpen(!open)}
        >
          <Caret.react tag="span" className="jp-mlops-caret" />
          <h3 className="jp-mlops-section-title">{props.title}</h3>
          {props.count !== undefined && (
            <span
              className="jp-mlops-count"
              aria-label={`${props.count} items`}
            >
              {props.count}
            </span>
          )}
          {props.badge}
        </button>
        {props.actions && (
          <div className="jp-mlops-section-actions">{props.actions}</div>
        )}
      </div>
      {open && (
        <div className="jp-mlops-section-body" id={bodyId}>
          {props.children}
        </div>
      )}
    </section>
  );
}

/** An empty or error state in words, never a blank area. */
export function Message(props: {
  kind?: 'info' | 'error' | 'warning';
  children: React.ReactNode;
}): JSX.Element {
  const kind = props.kind ?? 'info';
  return (
    <div
      className={`jp-mlops-message jp-mlops-mod-${kind}`}
      role={kind === 'error' ? 'alert' : 'status'}
    >
      {props.children}
    </div>
  );
}

/** The words for a failed call: the server's own message, with a hint when it helps. */
export function ErrorMessage(props: {
  error: ApiError;
  what: string;
}): JSX.Element {
  const { error } = props;
  let hint: string | null = null;
  if (error.status === 503) {
    hint =
      'The tracking store cannot be reached; the sidebar retries on its own.';
  } else if (error.status === 0 && error.kind === 'NetworkError') {
    hint = 'Is the Jupyter server still running?';
  }
  return (
    <Message kind="error">
      <span className="jp-mlops-message-title">
        Could not load {props.what}.
      </span>{' '}
      {error.message}
      {hint && <span className="jp-mlops-message-hint"> {hint}</span>}
    </Message>
  );
}

export function Loading(props: { what: string }): JSX.Element {
  return <Message>Loading {props.what}…</Message>;
}

const STATUS_CLASS: { [status: string]: string } = {
  FINISHED: 'ok',
  FAILED: 'bad',
  KILLED: 'warn',
  RUNNING: 'busy',
  SCHEDULED: 'busy',
  PENDING: 'busy',
  WAITING: 'muted',
  running: 'ok',
  unresponsive: 'warn',
  dead: 'bad',
  stopped: 'muted',
  READY: 'ok'
};

export function StatusBadge(props: {
  status: string;
  label?: string;
}): JSX.Element {
  const kind = STATUS_CLASS[props.status] ?? 'muted';
  return (
    <span
      className={`jp-mlops-status jp-mlops-mod-${kind}`}
      title={props.status}
    >
      {props.label ?? props.status.toLowerCase()}
    </span>
  );
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** How long something has run so far, ticking every second. */
export function Elapsed(props: {
  since: number;
  className?: string;
}): JSX.Element {
  const [now, setNow] = React.useState(Date.now());
  React.useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, []);
  const seconds = Math.max(0, (now - props.since) / 1000);
  return (
    <span
      className={props.className ?? 'jp-mlops-run-duration'}
      aria-label="running for"
    >
      {seconds < 60
        ? `${Math.floor(seconds)} s`
        : formatDuration(Math.floor(seconds))}
    </span>
  );
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  return Number(value.toPrecision(4)).toString();
}

export function formatTime(epochMs: number | null | undefined): string {
  if (!epochMs) {
    return '';
  }
  return new Date(epochMs).toLocaleTimeString();
}

export function formatDateTime(epochMs: number | null | undefined): string {
  if (!epochMs) {
    return '';
  }
  return new Date(epochMs).toLocaleString();
}

/** Params or metrics as `name=value` chips. */
export function KeyValues(props: {
  values: { [key: string]: string | number };
  kind: 'param' | 'metric';
  limit?: number;
}): JSX.Element | null {
  const entries = Object.entries(props.values).filter(
    ([key]) => !key.startsWith('mlops.')
  );
  if (entries.length === 0) {
    return null;
  }
  const shown = props.limit ? entries.slice(0, props.limit) : entries;
  const rest = entries.length - shown.length;
  return (
    <ul
      className={`jp-mlops-kv jp-mlops-kv-${props.kind}`}
      aria-label={`${props.kind}s`}
    >
      {shown.map(([key, value]) => (
        <li key={key} className="jp-mlops-kv-item" title={`${key} = ${value}`}>
          <span className="jp-mlops-kv-key">{key}</span>
          <span className="jp-mlops-kv-value">
            {typeof value === 'number' ? formatNumber(value) : value}
          </span>
        </li>
      ))}
      {rest > 0 && <li className="jp-mlops-kv-more">+{rest} more</li>}
    </ul>
  );
}

/** Runs `action` on Enter or Space, as a button would. */
export function onActivate(
  action: () => void
): (event: React.KeyboardEvent) => void {
  return event => {
    if (event.target !== event.currentTarget) {
      return;
    }
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      action();
    }
  };
}
