import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

import { stopKernels } from './cleanup';
import { consoleErrors, watchConsole } from './console';
import { shoot } from './shots';

const SIDEBAR = 'jupyter-mlops-sidebar';
const LONG = { timeout: 60_000 };

async function openSidebar(page: IJupyterLabPageFixture): Promise<Locator> {
  await page.evaluate(async id => {
    const app = (window as any).jupyterapp;
    await app.restored;
    app.shell.activateById(id);
  }, SIDEBAR);
  const sidebar = page.locator(`#${SIDEBAR}`);
  await expect(sidebar).toBeVisible();
  return sidebar;
}

/** The left area at `width` px (250 is JupyterLab's default). */
async function leftWidth(page: IJupyterLabPageFixture, width: number) {
  await page.evaluate(w => {
    const shell = (window as any).jupyterapp.shell;
    const split = shell._hsplitPanel;
    const total = split.node.clientWidth;
    split.setRelativeSizes([w / total, 1 - w / total, 0]);
  }, width);
  await page.waitForFunction(
    w => {
      const el = document.getElementById('jupyter-mlops-sidebar');
      return el !== null && Math.abs(el.clientWidth - w) < 40;
    },
    width,
    LONG
  );
}

/** Every state in light and dark, at the default width and a wide one. */
async function shootAll(
  page: IJupyterLabPageFixture,
  sidebar: Locator,
  name: string,
  testInfo: any
) {
  for (const theme of ['light', 'dark']) {
    if (theme === 'dark') {
      await page.theme.setDarkTheme();
    }
    for (const width of [250, 420]) {
      await leftWidth(page, width);
      await shoot(sidebar, `cockpit-${name}-${width}-${theme}`, testInfo);
    }
  }
  await page.theme.setLightTheme();
  await leftWidth(page, 250);
}

function runs(sidebar: Locator): Locator {
  return sidebar.locator('section[data-section="runs"]');
}

test.describe('MLOps cockpit', () => {
  // the extension logs no error and throws nothing, whatever the test does
  test.beforeEach(({ page }) => watchConsole(page));
  test.afterEach(({ page }) => {
    expect(consoleErrors(page)).toEqual([]);
  });
  // a failed test must not leave its kernel running
  test.afterEach(async ({ request }) => {
    await stopKernels(request);
  });

  test('the hint changes as soon as %load_ext has run', async ({
    page
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    await page.notebook.createNew();
    const section = runs(sidebar);
    await expect(section).toContainText(
      'Nothing tracked for this notebook yet',
      LONG
    );
    await shootAll(page, sidebar, 'not-tracked', testInfo);
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.runCell(0);
    // no other cell runs: the sidebar must learn it from the %load_ext cell alone
    await expect(section).toContainText(
      'Tracking is on for this notebook',
      LONG
    );
    await expect(section).not.toContainText('Nothing tracked');
    await shootAll(page, sidebar, 'tracking-on', testInfo);
  });

  test('a renamed notebook keeps its runs and records later cells under its new path', async ({
    page,
    request,
    tmpPath
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    const name = (await page.notebook.createNew())!;
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.addCell('code', 'before_rename = 1');
    await page.notebook.run();
    const section = runs(sidebar);
    const rows = section.locator('.jp-mlops-run');
    await expect(rows.filter({ hasText: 'before_rename' })).toHaveCount(
      1,
      LONG
    );

    // File > Rename
    await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      void app.commands.execute('docmanager:rename');
    });
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toBeVisible();
    await dialog.locator('input').fill('renamed-train.ipynb');
    await dialog.locator('.jp-mod-accept').click();
    const renamed = `${tmpPath}/renamed-train.ipynb`;
    await expect(section.locator('.jp-mlops-notebook')).toHaveText(
      renamed,
      LONG
    );
    await expect(rows.filter({ hasText: 'before_rename' })).toHaveCount(
      1,
      LONG
    );
    await expect(section).not.toContainText('Nothing tracked');

    await page.notebook.addCell('code', 'after_rename = 2');
    await page.notebook.runCell(2);
    const after = rows.filter({ hasText: 'after_rename' });
    await expect(after).toHaveCount(1, LONG);
    await expect(after.locator('.jp-mlops-status')).toHaveText(
      'finished',
      LONG
    );
    await expect(rows.filter({ hasText: 'before_rename' })).toHaveCount(1);

    // the store agrees, once the writer has stored the journal's last record: one
    // experiment, one session, cells tagged with their path
    const listed = async () =>
      (
        await request.get(
          `/jupyter-mlops/api/runs?notebook=${encodeURIComponent(renamed)}`
        )
      ).json();
    const afterRename = (page1: any) =>
      page1.runs.find((r: any) => r.source_preview.startsWith('after_rename'));
    await expect
      .poll(async () => afterRename(await listed()) !== undefined, LONG)
      .toBe(true);
    const page1 = await listed();
    expect(page1.experiment).toContain('renamed-train.ipynb');
    expect(page1.sessions).toHaveLength(1);
    const old = await request.get(
      `/jupyter-mlops/api/runs?notebook=${encodeURIComponent(`${tmpPath}/${name}`)}`
    );
    expect((await old.json()).experiment_id).toBeNull();
    const stored = afterRename(page1);
    const detail = await request.get(
      `/jupyter-mlops/api/runs/${stored.run_id}`
    );
    expect((await detail.json()).tags['mlflow.source.name']).toContain(
      'renamed-train.ipynb'
    );
    await shootAll(page, sidebar, 'renamed', testInfo);
  });

  test('the sidebar is found by its icon, its label and the command palette', async ({
    page
  }, testInfo) => {
    await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      await app.restored;
      app.shell.activateById('filebrowser');
    });
    const tab = page.locator(
      `.jp-SideBar .lm-TabBar-tab[data-id="${SIDEBAR}"]`
    );
    await expect(tab).toBeVisible();
    await expect(tab).toHaveAttribute('title', /MLOps/);
    await shoot(
      page.locator('.jp-SideBar.jp-mod-left'),
      'cockpit-left-bar',
      testInfo
    );

    await page.keyboard.press('Control+Shift+C');
    const palette = page.locator('#command-palette');
    await expect(palette).toBeVisible();
    await palette.locator('input').fill('MLOps');
    const items = palette.locator('.lm-CommandPalette-item');
    await expect(
      items.filter({ hasText: 'MLOps: Open the Sidebar' })
    ).toHaveCount(1);
    await expect(
      items.filter({ hasText: 'MLOps: Open the Panel in the Notebook' })
    ).toHaveCount(1);
    await expect(
      items.filter({ hasText: 'MLOps: Run a Pipeline…' })
    ).toHaveCount(1);
    await shoot(palette, 'cockpit-palette', testInfo);
    await items.filter({ hasText: 'MLOps: Open the Sidebar' }).click();
    const sidebar = page.locator(`#${SIDEBAR}`);
    await expect(sidebar).toBeVisible();
    await expect(runs(sidebar)).toContainText(
      'Run %load_ext jupyter_mlops in a notebook cell to track its runs',
      LONG
    );
    await shootAll(page, sidebar, 'no-notebook', testInfo);

    // a refresh of what did not change costs an empty 304: the last ETag goes along
    await expect(
      sidebar.locator('section[data-section="models"]')
    ).toContainText('digits', LONG);
    const models = page.waitForResponse(
      r =>
        r.url().includes('/jupyter-mlops/api/models') &&
        r.request().headers()['if-none-match'] !== undefined,
      LONG
    );
    await sidebar
      .getByRole('button', { name: 'Refresh every section now' })
      .click();
    expect((await models).status()).toBe(304);
    await expect(
      sidebar.locator('section[data-section="models"]')
    ).toContainText('digits');

    // the panel and a pipeline run go through the magics, in a new cell
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.runCell(0);
    await page.evaluate(() =>
      (window as any).jupyterapp.commands.execute('jupyter-mlops:open-panel')
    );
    const cells = page.locator('.jp-Notebook .jp-Cell');
    const panelCell = cells.filter({ hasText: '%mlops panel' });
    await expect(panelCell).toContainText('%mlops panel');
    await expect(panelCell.locator('.jp-OutputArea-output')).not.toHaveCount(
      0,
      LONG
    );
    await expect(panelCell.locator('.jp-OutputArea-output')).not.toContainText(
      'Error'
    );

    void page.evaluate(() =>
      (window as any).jupyterapp.commands.execute('jupyter-mlops:run-pipeline')
    );
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Run a pipeline');
    await dialog.locator('input').fill('missing.yaml');
    await dialog.locator('.jp-mod-accept').click();
    const runCell = cells.filter({ hasText: '%mlops run missing.yaml' });
    await expect(runCell).toHaveCount(1, LONG);
    await expect(runCell.locator('.jp-OutputArea-output')).toContainText(
      'missing.yaml',
      LONG
    );
  });
  test('a failed row names its line and goes to its cell; rows show labels and telling lines', async ({
    page
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.addCell('code', 'import math\nimport json\nrate = 0.5');
    await page.notebook.addCell('code', '# mlops: load the digits\nsize = 8');
    await page.notebook.addCell('code', 'filler = 1');
    // one-line statements: the editor indents what Galata types after a colon
    await page.notebook.addCell(
      'code',
      'values = [1, 0]\nratio = 1 / values[1]'
    );
    await page.notebook.run();
    const section = runs(sidebar);
    const rows = section.locator('.jp-mlops-run');
    // the first statement that does something, not the import above it
    await expect(
      rows.locator('.jp-mlops-run-source', { hasText: 'rate = 0.5' })
    ).toHaveCount(1, LONG);
    await expect(section.locator('.jp-mlops-run-source')).not.toContainText([
      'import math'
    ]);
    await expect(
      rows.locator('.jp-mlops-run-label', { hasText: 'load the digits' })
    ).toHaveCount(1, LONG);

    const failed = rows.filter({ hasText: 'ZeroDivisionError' });
    await expect(failed.locator('.jp-mlops-status')).toHaveText('failed', LONG);
    await expect(failed.locator('.jp-mlops-run-error-place')).toContainText(
      'line 2'
    );
    await expect(failed.locator('.jp-mlops-run-error-place')).toContainText(
      'ratio = 1 / values[1]'
    );
    // once stored, the details carry the traceback tail from the cell on
    await expect(section.locator('.jp-mlops-pending')).toHaveCount(0, LONG);
    await failed.locator('.jp-mlops-run-row').click();
    const tail = failed.locator('.jp-mlops-traceback');
    await expect(tail).toContainText('Cell, line 2, in <module>', LONG);
    await expect(tail).toContainText('ZeroDivisionError: division by zero');
    await shootAll(page, sidebar, 'failed-row', testInfo);

    // go to cell: the notebook selects the failed cell (the 5th), from elsewhere
    await page.notebook.selectCells(0);
    await failed
      .locator('.jp-mlops-run-error')
      .getByRole('button', { name: 'Go to cell' })
      .click();
    await expect
      .poll(
        () =>
          page.evaluate(
            () =>
              (window as any).jupyterapp.shell.currentWidget?.content
                ?.activeCellIndex
          ),
        LONG
      )
      .toBe(4);
    await expect(
      page.locator('.jp-Notebook .jp-Cell.jp-mod-active')
    ).toContainText('ratio = 1 / values[1]');
    await expect(
      page.locator('.jp-Notebook .jp-Cell.jp-mod-active')
    ).toBeInViewport();
  });

  test('two picked runs are compared side by side, params that differ first', async ({
    page
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.addCell('code', 'import jupyter_mlops');
    await page.notebook.addCell(
      'code',
      '# mlops: first try\njupyter_mlops.log_params(lr=0.1, depth=3)\njupyter_mlops.log_metrics(accuracy=0.8)'
    );
    await page.notebook.addCell(
      'code',
      '# mlops: second try\njupyter_mlops.log_params(lr=0.01, depth=3)\njupyter_mlops.log_metrics(accuracy=0.9)'
    );
    await page.notebook.run();
    const section = runs(sidebar);
    // only stored runs can be picked
    await expect(section.locator('.jp-mlops-pending')).toHaveCount(0, LONG);
    await expect(section.locator('.jp-mlops-pick')).toHaveCount(3, LONG);
    const row = (label: string) =>
      section.locator('.jp-mlops-run').filter({ hasText: label });
    await row('first try').locator('.jp-mlops-pick').check();
    const bar = section.getByLabel('Comparison');
    await expect(bar).toContainText('1 run picked');
    await expect(bar.getByRole('button', { name: 'Compare' })).toBeDisabled();
    await row('second try').locator('.jp-mlops-pick').check();
    await bar.getByRole('button', { name: 'Compare' }).click();
    const table = bar.locator('.jp-mlops-compare-table');
    await expect(table.locator('thead th')).toHaveText(
      ['', /first try/, /second try/],
      LONG
    );
    const differs = table.locator('tr.jp-mlops-mod-differs');
    await expect(differs).toHaveCount(1);
    await expect(differs.locator('th, td')).toHaveText(['lr', '0.1', '0.01']);
    await expect(
      table.locator('tr.jp-mlops-compare-metric').locator('th, td')
    ).toHaveText(['accuracy', '0.8', '0.9']);
    await expect(bar).toContainText('The same in every run: depth');
    await shootAll(page, sidebar, 'compare', testInfo);
    await bar.getByRole('button', { name: 'Clear' }).click();
    await expect(section.getByLabel('Comparison')).toHaveCount(0);
    await expect(section.locator('.jp-mlops-pick:checked')).toHaveCount(0);
  });

  test('a running cell shows while it runs, with the metrics it logged so far', async ({
    page,
    request,
    tmpPath
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    // one-line statements (the editor indents after a colon); the cell waits for a file
    await page.notebook.addCell(
      'code',
      '# mlops: train the model\nimport pathlib, time\nimport jupyter_mlops\n' +
        'logged = [jupyter_mlops.log_metrics({"loss": 1 / (e + 1), "accuracy": e / 10}, step=e) for e in range(8)]\n' +
        'waited = [time.sleep(0.1) for _ in iter(lambda: pathlib.Path("gate").exists(), True)]'
    );
    // not page.notebook.run(), which waits for the cells to end
    await page.evaluate(() => {
      void (window as any).jupyterapp.commands.execute(
        'notebook:run-all-cells'
      );
    });
    const row = runs(sidebar)
      .locator('.jp-mlops-run')
      .filter({ hasText: 'train the model' });
    try {
      await expect(row.locator('.jp-mlops-status')).toHaveText('running', LONG);
      const live = row.locator('.jp-mlops-live-item');
      await expect(live).toHaveCount(2, LONG);
      await expect(live.locator('.jp-mlops-kv-key')).toHaveText([
        'loss',
        'accuracy'
      ]);
      await expect(live.locator('.jp-mlops-kv-value')).toHaveText([
        '0.125',
        '0.7'
      ]);
      await expect(live.locator('polyline')).toHaveCount(2);
      await expect(row.locator('.jp-mlops-pending')).toHaveCount(0);
      // the elapsed time ticks on its own, between two polls
      const elapsed = row.getByLabel('running for');
      const before = (await elapsed.textContent()) ?? '';
      await expect(elapsed).not.toHaveText(before, LONG);
      await shootAll(page, sidebar, 'running-row', testInfo);
    } finally {
      const gate = await request.put(`/api/contents/${tmpPath}/gate`, {
        data: { type: 'file', format: 'text', content: '' }
      });
      expect(gate.ok()).toBe(true);
    }
    await expect(row.locator('.jp-mlops-status')).toHaveText('finished', LONG);
    await expect(row.locator('.jp-mlops-live')).toHaveCount(0);
    await expect(row.locator('.jp-mlops-kv-metric')).toContainText('loss');
  });

  test('a pipeline run shows its steps live, in the order they run, with their durations', async ({
    page,
    request,
    tmpPath
  }, testInfo) => {
    const notebook = (...cells: [string, string[]][]) => ({
      type: 'notebook',
      format: 'json',
      content: {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: {
          kernelspec: {
            name: 'python3',
            display_name: 'Python 3',
            language: 'python'
          }
        },
        cells: cells.map(([source, tags], i) => ({
          cell_type: 'code',
          id: `c${i}`,
          source,
          metadata: { tags },
          outputs: [],
          execution_count: null
        }))
      }
    });
    const put = async (path: string, body: unknown) =>
      expect(
        (
          await request.put(`/api/contents/${tmpPath}/${path}`, { data: body })
        ).ok()
      ).toBe(true);
    // named against the alphabet: zeta runs first, alpha needs what it made
    await put(
      'zeta.ipynb',
      notebook(
        ['x = 1', ['parameters']],
        ['import jupyter_mlops\njupyter_mlops.output("y", x + 1)', []]
      )
    );
    // alpha runs until the test lets it end, so its running state can be seen
    await put(
      'alpha.ipynb',
      notebook(
        ['y = 0', ['parameters']],
        [
          // a step runs in the project's root, the server's
          `import pathlib, time\nwhile not pathlib.Path("${tmpPath}/gate").exists():\n    time.sleep(0.05)`,
          []
        ]
      )
    );
    await put('ordered.yaml', {
      type: 'file',
      format: 'text',
      content:
        'name: ordered\nsteps:\n' +
        '  alpha: {notebook: alpha.ipynb, params: {y: "${steps.zeta.y}"}}\n' +
        '  zeta: {notebook: zeta.ipynb, outputs: [y]}\n'
    });

    const sidebar = await openSidebar(page);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.addCell('code', '%mlops run ordered.yaml');
    // not page.notebook.run(), which waits for the cells to end
    await page.evaluate(() => {
      void (window as any).jupyterapp.commands.execute(
        'notebook:run-all-cells'
      );
    });
    const card = sidebar
      .locator('section[data-section="pipelines"] .jp-mlops-card')
      .filter({ hasText: 'ordered' });
    const steps = card.locator('.jp-mlops-step');
    try {
      // while it runs: zeta done with its seconds, alpha running with its time so far
      await expect(steps).toHaveCount(2, { timeout: 240_000 });
      await expect(steps.locator('.jp-mlops-status')).toHaveText([
        'zeta',
        'alpha'
      ]);
      await expect(steps.nth(1)).toHaveAttribute('data-status', 'RUNNING', {
        timeout: 240_000
      });
      await expect(steps.nth(0)).toHaveAttribute('data-status', 'FINISHED');
      await expect(card.locator('.jp-mlops-card-head')).toContainText(
        'running'
      );
      const elapsed = steps.nth(1).getByLabel('running for');
      const before = (await elapsed.textContent()) ?? '';
      await expect(elapsed).not.toHaveText(before, LONG);
      await shootAll(page, sidebar, 'pipeline-running', testInfo);
    } finally {
      const gate = await request.put(`/api/contents/${tmpPath}/gate`, {
        data: { type: 'file', format: 'text', content: '' }
      });
      expect(gate.ok()).toBe(true);
    }
    await expect(steps.nth(1)).toHaveAttribute('data-status', 'FINISHED', {
      timeout: 240_000
    });
    await expect(card.locator('.jp-mlops-card-head')).toContainText('finished');
    await expect(steps.nth(1).locator('.jp-mlops-step-duration')).toHaveText(
      /\d/
    );
    await shootAll(page, sidebar, 'pipeline-steps', testInfo);
  });

  test('a run whose input changed since it ran is marked stale, with why', async ({
    page
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.addCell('code', 'rate = 0.5');
    await page.notebook.addCell('code', 'scaled = rate * 10');
    await page.notebook.run();
    const rows = runs(sidebar).locator('.jp-mlops-run');
    const reader = rows.filter({ hasText: 'scaled = rate * 10' });
    await expect(reader).toHaveCount(1, LONG);
    await expect(reader.locator('.jp-mlops-stale')).toHaveCount(0);

    // the upstream cell re-run with new source: the reading cell's run no longer holds
    await page.notebook.setCell(1, 'code', 'rate = 0.2');
    await page.notebook.runCell(1);
    await expect(
      rows.locator('.jp-mlops-run-source', { hasText: 'rate = 0.2' })
    ).toHaveCount(1, LONG);
    await expect(reader.locator('.jp-mlops-stale')).toHaveText('stale', LONG);
    await expect(reader.getByLabel('why it is stale')).toContainText(
      'rate changed: cell [4] `rate = 0.2` was re-run with new source'
    );
    await shootAll(page, sidebar, 'stale-row', testInfo);

    // re-run, it reads what its input holds now
    await page.notebook.runCell(2);
    const fresh = rows.filter({ hasText: 'scaled = rate * 10' }).first();
    await expect(fresh.locator('.jp-mlops-run-count')).toHaveText('[5]', LONG);
    await expect(fresh.locator('.jp-mlops-stale')).toHaveCount(0);
  });

  test('a stored run opens in MLflow in a JupyterLab tab, and MLflow is in the launcher', async ({
    page
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
    await page.notebook.addCell('code', 'proxy_check_accuracy = 0.93');
    await page.notebook.run();
    const row = runs(sidebar)
      .locator('.jp-mlops-run')
      .filter({ hasText: 'proxy_check_accuracy' });
    await expect(row).toHaveCount(1, LONG);
    // a stored run has a run id; a row still in the journal does not
    await expect(row.locator('.jp-mlops-pending')).toHaveCount(0, LONG);
    await row.locator('.jp-mlops-run-source').click();
    const open = sidebar.getByRole('button', { name: 'Open in MLflow' });
    await expect(open).toBeVisible(LONG);
    await open.click();
    const tab = page.locator('.lm-TabBar-tab', { hasText: /^MLflow run / });
    await expect(tab).toBeVisible(LONG);
    // the first request starts MLflow's UI on the project's store: imports take a while
    const frame = page.frameLocator('#jp-main-dock-panel iframe').last();
    await expect(frame.locator('body')).toContainText('proxy_check_accuracy', {
      timeout: 240_000
    });
    await shoot(
      page.locator('#jp-main-dock-panel'),
      'mlflow-run-in-a-tab',
      testInfo
    );

    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute('launcher:create');
    });
    await expect(
      page.locator('.jp-LauncherCard', { hasText: 'MLflow' }).last()
    ).toBeVisible(LONG);
  });

  test('a version shows its metrics; a refused promotion is forced with a reason; rollback names its target', async ({
    page
  }, testInfo) => {
    const sidebar = await openSidebar(page);
    const models = sidebar.locator('section[data-section="models"]');
    const digits = models.locator('[data-model="digits"]');
    const champion = digits.locator(
      '[data-alias="champion"] .jp-mlops-alias-version'
    );
    await expect(champion).toHaveText('v1', LONG);
    await expect(digits.locator('.jp-mlops-card-head')).toContainText(
      '3 versions'
    );
    await expect(digits.locator('[data-version="3"]')).toContainText(
      'test_accuracy0.5'
    );
    await expect(digits.locator('[data-version="1"]')).toContainText(
      '@champion: gates passed'
    );
    const rollBack = digits
      .locator('[data-alias="champion"]')
      .getByRole('button', { name: 'Roll back' });
    // v1 was the first holder: nothing to roll back to
    await expect(rollBack).toBeDisabled();
    await expect(rollBack).toHaveAttribute('title', /Nothing to roll back to/);
    await shootAll(page, sidebar, 'models', testInfo);

    await digits.getByRole('button', { name: 'Promote version 3' }).click();
    const dialog = page.locator('.jp-Dialog');
    await dialog.getByRole('button', { name: 'Promote' }).click();
    const refusal = page
      .locator('.jp-Dialog')
      .filter({ hasText: 'Promotion refused' });
    await expect(refusal).toBeVisible(LONG);
    await expect(refusal).not.toContainText('force=True');
    await expect(
      refusal.locator('.jp-mlops-gates .jp-mod-failed')
    ).not.toHaveCount(0);
    await shoot(
      refusal.locator('.jp-Dialog-content'),
      'cockpit-dialog-force',
      testInfo
    );
    // a force without a reason is not sent: the dialog asks again
    await refusal.getByRole('button', { name: 'Force promotion' }).click();
    await expect(refusal).toBeVisible();
    await refusal
      .locator('input[name="force-reason"]')
      .fill('demo needs the new model');
    await refusal.getByRole('button', { name: 'Force promotion' }).click();
    await expect(champion).toHaveText('v3', LONG);
    await expect(digits.locator('.jp-mlops-note')).toContainText(
      'champion → version 3 (was version 1): forced past failed gates.'
    );

    await expect(rollBack).toBeEnabled();
    await rollBack.click();
    const ask = page
      .locator('.jp-Dialog')
      .filter({ hasText: 'Roll back digits@champion' });
    await expect(ask).toContainText(
      'Move champion from version 3 back to version 1'
    );
    await ask.getByRole('button', { name: 'Roll back to v1' }).click();
    await expect(champion).toHaveText('v1', LONG);
    await expect(digits.locator('.jp-mlops-note')).toContainText(
      'champion rolled back from version 3 to 1.'
    );
    await expect(rollBack).toBeDisabled();
    await digits.locator('.jp-mlops-history summary').click();
    await expect(digits.locator('.jp-mlops-history')).toContainText(
      '@champion set to v1'
    );
    await expect(digits.locator('.jp-mlops-history')).not.toContainText('v–');
    await shootAll(page, sidebar, 'models-after', testInfo);
  });
});
