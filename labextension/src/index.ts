import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import { CatalogModel } from './catalogModel';
import { RunsModel } from './runsModel';
import { MlopsSidebar } from './sidebar';

/** How long after a cell finished we look for models, pipelines or deployments it made. */
const CATALOG_AFTER_CELL = 2000;

/** Keeps the runs model on the active notebook and fast while its kernel works. */
function followNotebooks(
  tracker: INotebookTracker,
  runs: RunsModel,
  catalog: CatalogModel
): void {
  let current: NotebookPanel | null = null;
  const onStatus = (_: unknown, status: Kernel.Status): void => {
    if (status === 'busy') {
      runs.noteActivity(true);
    } else if (status === 'idle') {
      runs.noteActivity(false);
      catalog.poke(CATALOG_AFTER_CELL);
    }
  };
  const onPath = (): void => runs.setNotebook(current?.context.path ?? null);
  const follow = (panel: NotebookPanel | null): void => {
    if (current) {
      current.sessionContext.statusChanged.disconnect(onStatus);
      current.context.pathChanged.disconnect(onPath);
    }
    current = panel;
    if (panel) {
      panel.sessionContext.statusChanged.connect(onStatus);
      panel.context.pathChanged.connect(onPath);
    }
    onPath();
  };
  tracker.currentChanged.connect((_, panel) => follow(panel));
  NotebookActions.executed.connect((_, { notebook }) => {
    if (current && notebook === current.content) {
      runs.noteActivity(false);
    }
  });
  follow(tracker.currentWidget);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:sidebar',
  description:
    'The MLOps sidebar: cell runs of the active notebook, pipelines, models, deployments.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null
  ) => {
    const runs = new RunsModel();
    const catalog = new CatalogModel();
    const sidebar = new MlopsSidebar(runs, catalog);
    app.shell.add(sidebar, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }
    // the tracker's current widget may be restored only after the app started
    void app.restored.then(() => followNotebooks(tracker, runs, catalog));
    catalog.start();
    // polls slow down in a background tab; catch up as soon as it is back
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && sidebar.isVisible) {
        sidebar.refresh();
      }
    });
  }
};

export default plugin;
