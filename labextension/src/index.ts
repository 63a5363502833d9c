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
import {
  ICommandPalette,
  InputDialog,
  MainAreaWidget
} from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { Contents, Kernel } from '@jupyterlab/services';
import { IFrame } from '@jupyterlab/ui-components';

import { call } from './api';
import { CatalogModel } from './catalogModel';
import { mlopsIcon } from './icons';
import { RunsModel } from './runsModel';
import { MlopsSidebar } from './sidebar';
import { INotebookMove, Routes } from './tokens';

/** The palette's commands. */
export const CommandIDs = {
  openSidebar: 'jupyter-mlops:open-sidebar',
  openPanel: 'jupyter-mlops:open-panel',
  runPipeline: 'jupyter-mlops:run-pipeline',
  openMlflow: 'jupyter-mlops:open-mlflow'
};

let mlflowTabs = 0;

/**
 * MLflow's UI on the project's store in a JupyterLab tab, at one run when given: the
 * Jupyter server serves it under `mlflow/` (jupyter-server-proxy), behind its own login.
 */
function openMlflow(app: JupyterFrontEnd, runId?: string): void {
  const content = new IFrame({
    sandbox: [
      'allow-scripts',
      'allow-same-origin',
      'allow-forms',
      'allow-popups',
      'allow-downloads'
    ]
  });
  const home = URLExt.join(PageConfig.getBaseUrl(), 'mlflow/');
  content.url = runId ? `${home}#/runs/${encodeURIComponent(runId)}` : home;
  const widget = new MainAreaWidget({ content });
  widget.id = `jp-mlops-mlflow-${++mlflowTabs}`;
  widget.title.label = runId ? `MLflow run ${runId.slice(0, 8)}` : 'MLflow';
  widget.title.caption = runId ? `MLflow: run ${runId}` : "MLflow's UI";
  widget.title.icon = mlopsIcon;
  widget.title.closable = true;
  app.shell.add(widget, 'main');
  app.shell.activateById(widget.id);
}

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
      // a long cell may be running a pipeline (%mlops run): its steps show as they go
      catalog.poke(CATALOG_AFTER_CELL);
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

/**
 * A notebook keeps its runs across File > Rename and moves (docs/rest-api.md, moves.py):
 * after JupyterLab renamed a notebook or a folder, the server renames the experiments, then
 * each open notebook under the new path tells its kernel, silently (no tracked cell, no
 * output, no history), so later cells are recorded under the new path.
 */
function followRenames(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  runs: RunsModel
): void {
  const onChange = async (
    _: unknown,
    change: Contents.IChangedArgs
  ): Promise<void> => {
    const from = change.oldValue?.path;
    const to = change.newValue?.path;
    if (change.type !== 'rename' || !from || !to) {
      return;
    }
    let moved: INotebookMove;
    try {
      moved = await call<INotebookMove>(Routes.moveNotebook(), {
        method: 'POST',
        body: { from, to }
      });
    } catch (error) {
      console.warn('jupyter-mlops: the runs did not follow the rename', error);
      return;
    }
    const folder = !to.endsWith('.ipynb');
    tracker.forEach(panel => {
      const path = panel.context.path;
      const inside = path === to || (folder && path.startsWith(to + '/'));
      const kernel = panel.sessionContext.session?.kernel;
      if (!inside || !kernel) {
        return;
      }
      const absolute = folder
        ? moved.notebook + path.slice(to.length)
        : moved.notebook;
      const code =
        "__import__('sys').modules.get('jupyter_mlops.tracking.api') and " +
        "__import__('sys').modules['jupyter_mlops.tracking.api']" +
        `.notebook_moved(${JSON.stringify(absolute)})`;
      kernel.requestExecute({ code, silent: true, store_history: false });
    });
    void runs.refresh();
  };
  app.serviceManager.contents.fileChanged.connect(
    (sender, change) => void onChange(sender, change)
  );
}

/** Puts `code` in a new cell below the active one of the current notebook and runs it. */
async function runInNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  code: string
): Promise<void> {
  const panel = tracker.currentWidget;
  if (!panel) {
    return;
  }
  app.shell.activateById(panel.id);
  NotebookActions.insertBelow(panel.content);
  const cell = panel.content.activeCell;
  if (cell) {
    cell.model.sharedModel.setSource(code);
    await NotebookActions.run(panel.content, panel.sessionContext);
  }
}

/** Scrolls the current notebook to the cell `cellId` and selects it. */
async function goToCell(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  cellId: string
): Promise<boolean> {
  const panel = tracker.currentWidget;
  if (!panel) {
    return false;
  }
  const notebook = panel.content;
  const index = notebook.widgets.findIndex(cell => cell.model.id === cellId);
  if (index < 0) {
    return false;
  }
  app.shell.activateById(panel.id);
  notebook.deselectAll();
  notebook.activeCellIndex = index;
  notebook.mode = 'command';
  await notebook.scrollToItem(index, 'center');
  return true;
}

function addCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  sidebar: MlopsSidebar,
  palette: ICommandPalette | null
): void {
  const hasNotebook = (): boolean => tracker.currentWidget !== null;
  app.commands.addCommand(CommandIDs.openSidebar, {
    label: 'MLOps: Open the Sidebar',
    caption: 'Cell runs, pipelines, models and deployments of this project',
    icon: mlopsIcon,
    execute: () => app.shell.activateById(sidebar.id)
  });
  app.commands.addCommand(CommandIDs.openPanel, {
    label: 'MLOps: Open the Panel in the Notebook',
    caption: 'Runs `%mlops panel` in a new cell of the current notebook',
    isEnabled: hasNotebook,
    execute: () => runInNotebook(app, tracker, '%mlops panel')
  });
  app.commands.addCommand(CommandIDs.runPipeline, {
    label: 'MLOps: Run a Pipeline…',
    caption:
      'Runs `%mlops run <pipeline.yaml>` in a new cell of the current notebook',
    isEnabled: hasNotebook,
    execute: async () => {
      const answer = await InputDialog.getText({
        title: 'Run a pipeline',
        label: 'Pipeline file (relative to the notebook)',
        text: 'pipeline.yaml',
        okLabel: 'Run'
      });
      const path = answer.value?.trim();
      if (answer.button.accept && path) {
        await runInNotebook(app, tracker, `%mlops run ${path}`);
      }
    }
  });
  app.commands.addCommand(CommandIDs.openMlflow, {
    label: args =>
      args.runId ? 'MLOps: Open the Run in MLflow' : 'MLOps: Open MLflow',
    caption: "MLflow's UI on this project's store, in a JupyterLab tab",
    icon: mlopsIcon,
    execute: args => openMlflow(app, (args.runId as string) || undefined)
  });
  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: 'MLOps' });
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:sidebar',
  description:
    'The MLOps sidebar: cell runs of the active notebook, pipelines, models, deployments.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const runs = new RunsModel();
    runs.goToCell = cellId => goToCell(app, tracker, cellId);
    runs.openInMlflow = runId =>
      void app.commands.execute(CommandIDs.openMlflow, { runId });
    const catalog = new CatalogModel();
    catalog.openPath = async path => {
      await app.commands.execute('docmanager:open', { path });
    };
    const sidebar = new MlopsSidebar(runs, catalog);
    app.shell.add(sidebar, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }
    // the tracker's current widget may be restored only after the app started
    void app.restored.then(() => followNotebooks(tracker, runs, catalog));
    followRenames(app, tracker, runs);
    addCommands(app, tracker, sidebar, palette);
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
