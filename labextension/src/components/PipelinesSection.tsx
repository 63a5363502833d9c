import * as React from 'react';

import { CatalogModel } from '../catalogModel';
import {
  Elapsed,
  ErrorMessage,
  Loading,
  Message,
  Section,
  StatusBadge,
  formatDateTime,
  formatDuration
} from './common';

/** The latest pipeline runs of the project, with the state of each step. */
export function PipelinesSection(props: { model: CatalogModel }): JSX.Element {
  const slot = props.model.pipelines;
  const runs = slot.value ?? [];
  return (
    <Section
      id="pipelines"
      title="Pipeline runs"
      count={slot.value ? runs.length : undefined}
    >
      {slot.error && <ErrorMessage error={slot.error} what="pipeline runs" />}
      {!slot.loaded && <Loading what="pipeline runs" />}
      {slot.loaded && !slot.error && runs.length === 0 && (
        <Message>
          No pipeline runs yet. <code>jupyter mlops run pipeline.yaml</code> or{' '}
          <code>%mlops run pipeline.yaml</code> runs one.
        </Message>
      )}
      <ul className="jp-mlops-cards" aria-label="Pipeline runs">
        {runs.map(run => (
          <li key={run.run_id} className="jp-mlops-card" tabIndex={0}>
            <div className="jp-mlops-card-head">
              <span className="jp-mlops-card-title">{run.name}</span>
              <StatusBadge status={run.status} />
              {run.status === 'RUNNING' ? (
                <Elapsed since={run.start_time} />
              ) : (
                <span className="jp-mlops-run-duration">
                  {formatDuration(run.duration_s)}
                </span>
              )}
            </div>
            <div className="jp-mlops-muted">
              {formatDateTime(run.start_time)}
            </div>
            <ul className="jp-mlops-steps" aria-label="steps">
              {Object.entries(run.steps).map(([step, status]) => {
                const seconds = run.step_durations?.[step];
                const since = run.step_started?.[step];
                const live = status === 'RUNNING' || status === 'WAITING';
                return (
                  <li key={step} className="jp-mlops-step" data-status={status}>
                    <StatusBadge status={status} label={step} />
                    {status === 'RUNNING' && since !== undefined && (
                      <>
                        {' '}
                        <Elapsed
                          since={since}
                          className="jp-mlops-muted jp-mlops-step-duration"
                        />
                      </>
                    )}
                    {seconds !== undefined && !live && status !== 'CACHED' && (
                      <span className="jp-mlops-muted jp-mlops-step-duration">
                        {' '}
                        {formatDuration(seconds)}
                      </span>
                    )}
                  </li>
                );
              })}
            </ul>
            {run.failed_step && (
              <div className="jp-mlops-run-error">
                step {run.failed_step} failed
              </div>
            )}
          </li>
        ))}
      </ul>
    </Section>
  );
}
