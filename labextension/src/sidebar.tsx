import * as React from 'react';

import {
  ReactWidget,
  ToolbarButtonComponent,
  UseSignal,
  refreshIcon
} from '@jupyterlab/ui-components';
import { Message as LuminoMessage } from '@lumino/messaging';

import { CatalogModel } from './catalogModel';
import { ErrorMessage } from './components/common';
import { DeploymentsSection } from './components/DeploymentsSection';
import { ModelsSection } from './components/ModelsSection';
import { MonitoringSection } from './components/MonitoringSection';
import { PipelinesSection } from './components/PipelinesSection';
import { RunsSection } from './components/RunsSection';
import { mlopsIcon } from './icons';
import { RunsModel } from './runsModel';

export const SIDEBAR_ID = 'jupyter-mlops-sidebar';

/** The "MLOps" panel of the left area. */
export class MlopsSidebar extends ReactWidget {
  constructor(
    readonly runs: RunsModel,
    readonly catalog: CatalogModel
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-mlops-sidebar');
    this.title.icon = mlopsIcon;
    this.title.label = 'MLOps';
    this.title.caption = 'MLOps: cell runs, pipelines, models, deployments';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'MLOps');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.catalog.changed}>
        {() => (
          <div className="jp-mlops-panel">
            <header className="jp-mlops-header">
              <div className="jp-mlops-header-line">
                <h2 className="jp-mlops-title">MLOps</h2>
                <ToolbarButtonComponent
                  icon={refreshIcon}
                  tooltip="Refresh every section now"
                  onClick={() => this.refresh()}
                />
              </div>
              <ProjectLine catalog={this.catalog} />
            </header>
            {this.catalog.status.error ? (
              <ErrorMessage
                error={this.catalog.status.error}
                what="the MLOps server extension"
              />
            ) : null}
            <UseSignal signal={this.runs.changed}>
              {() => <RunsSection model={this.runs} />}
            </UseSignal>
            <PipelinesSection model={this.catalog} />
            <ModelsSection model={this.catalog} />
            <DeploymentsSection model={this.catalog} />
            <MonitoringSection model={this.catalog} />
          </div>
        )}
      </UseSignal>
    );
  }

  /** Asks the server for everything now instead of at the next poll. */
  refresh(): void {
    void this.runs.refresh();
    this.catalog.poke();
  }

  protected onAfterShow(msg: LuminoMessage): void {
    super.onAfterShow(msg);
    this.runs.setVisible(true);
    this.catalog.setVisible(true);
  }

  protected onAfterHide(msg: LuminoMessage): void {
    super.onAfterHide(msg);
    this.runs.setVisible(false);
    this.catalog.setVisible(false);
  }

  dispose(): void {
    this.runs.dispose();
    this.catalog.dispose();
    super.dispose();
  }
}

function ProjectLine(props: { catalog: CatalogModel }): JSX.Element | null {
  const status = props.catalog.status.value;
  if (!status) {
    return null;
  }
  const store = status.embedded ? 'embedded store' : status.tracking_uri;
  return (
    <div
      className="jp-mlops-muted jp-mlops-project"
      title={`${status.project_dir}\n${status.tracking_uri}`}
    >
      {status.project_dir} · {store}
    </div>
  );
}
