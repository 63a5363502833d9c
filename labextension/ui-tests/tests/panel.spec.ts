import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

import { stopDeployments } from './cleanup';
import { consoleErrors, SHARED_VERSION, watchConsole } from './console';
import { shoot } from './shots';

/** The tab of the panel that is shown now (ipywidgets hides the others). */
function shown(panel: Locator): Locator {
  return panel
    .locator('.widget-tab-contents > .widget-vbox')
    .filter({ visible: true });
}

function dropdown(tab: Locator, label: string): Locator {
  const exact = tab.page().locator('label').getByText(label, { exact: true });
  return tab
    .locator('.widget-dropdown')
    .filter({ has: exact })
    .locator('select');
}

async function openTab(panel: Locator, title: string): Promise<Locator> {
  await panel.getByRole('tab', { name: title }).click();
  return shown(panel);
}

async function runPanelNotebook(page: IJupyterLabPageFixture): Promise<string> {
  const name = await page.notebook.createNew();
  await page.notebook.setCell(0, 'code', '%load_ext jupyter_mlops');
  await page.notebook.addCell('code', 'lr = 0.1\naccuracy = 0.8');
  await page.notebook.addCell('code', 'lr = 0.01\naccuracy = 0.9');
  await page.notebook.addCell(
    'code',
    [
      'import numpy as np, pandas as pd',
      'rng = np.random.default_rng(0)',
      'train_df = pd.DataFrame(rng.normal(0, 1, (300, 2)), columns=["x0", "x1"])',
      'recent_df = pd.DataFrame(rng.normal(1.5, 1, (300, 2)), columns=["x0", "x1"])'
    ].join('\n')
  );
  await page.notebook.addCell('code', '%mlops panel');
  await page.notebook.run();
  return name!;
}

test.describe('%mlops panel', () => {
  // the extension logs no error and throws nothing, whatever the test does
  test.beforeEach(({ page }) => watchConsole(page));
  test.afterEach(({ page }) => {
    expect(consoleErrors(page)).toEqual([]);
  });
  // tall enough that each tab, chart included, fits in one screenshot
  test.use({ viewport: { width: 1400, height: 1700 } });

  // a failed test must not leave its model server running
  test.afterEach(async ({ request }) => {
    await stopDeployments(request);
  });

  test('promotes a version and shows every tab, charts included', async ({
    page,
    tmpPath
  }, testInfo) => {
    const name = await runPanelNotebook(page);
    const panel = page.locator('.jp-mlops-widget-panel');
    // a new kernel, %load_ext and the panel's first queries
    await expect(panel).toBeVisible({ timeout: 180_000 });

    // Runs: the two tracked cells, compared; the metrics chart is drawn by plotly
    let tab = shown(panel);
    const list = tab.locator('select[multiple]');
    // the cells reach the store through the journal's writer: Refresh until both are there
    await expect(async () => {
      await tab.getByRole('button', { name: 'Refresh' }).click();
      await expect(
        list.locator('option', { hasText: 'lr = 0.01' })
      ).toHaveCount(1, { timeout: 15_000 });
      await expect(list.locator('option', { hasText: 'lr = 0.1' })).toHaveCount(
        1,
        { timeout: 15_000 }
      );
    }).toPass({ timeout: 180_000 });
    const texts = await list.locator('option').allTextContents();
    const picks = texts
      .map((text, index) => ({ text, index }))
      // ipywidgets keeps the labels' spacing with non-breaking spaces
      .filter(o => /lr = 0\.0?1$/.test(o.text.replace(/\s+/g, ' ').trim()))
      .map(o => ({ index: o.index }));
    expect(picks).toHaveLength(2);
    await list.selectOption(picks);
    await tab.getByRole('button', { name: 'Compare' }).click();
    await expect(tab.locator('.jp-mlops-widget-message')).toHaveText(
      'compared 2 runs: 1 metrics'
    );
    await expect(tab.locator('.jp-mlops-widget-params')).toContainText('0.01');
    await expect(tab.locator('.js-plotly-plot')).toBeVisible();
    await expect(tab.locator('.js-plotly-plot .bars path')).toHaveCount(2);
    await shoot(panel, 'panel-runs', testInfo);

    // Models: promote v2 to champion through its gates; the alias moves in the listing
    tab = await openTab(panel, 'Models');
    const listing = tab.locator('table.jp-mlops-widget-models');
    // the aliases column of a version's row
    const aliases = (version: string) =>
      listing
        .locator('tr', { hasText: `v${version}` })
        .locator('td')
        .nth(2);
    await expect(aliases('1')).toContainText('champion');
    await dropdown(tab, 'model').selectOption('digits');
    await dropdown(tab, 'version').selectOption('2');
    await tab.getByRole('button', { name: 'Promote' }).click();
    const message = tab.locator('.jp-mlops-widget-message');
    await expect(message).toContainText(
      'digits@champion moved from v1 to v2 (passed)'
    );
    await expect(message).toContainText(
      'pass  test_accuracy >= 0.9: test_accuracy = 0.95'
    );
    await expect(aliases('2')).toContainText('champion');
    await expect(aliases('1')).toHaveText('');
    await shoot(panel, 'panel-models-promoted', testInfo);

    // v3 fails its gates: the reasons are listed, nothing moves
    await dropdown(tab, 'version').selectOption('3');
    await tab.getByRole('button', { name: 'Promote' }).click();
    await expect(message).toContainText(
      "promotion of digits v3 to 'champion' refused"
    );
    await expect(message).toContainText('parity: parity passed: False');
    await expect(message).toHaveClass(/jp-mlops-widget-error/);
    await expect(aliases('2')).toContainText('champion');
    await shoot(panel, 'panel-models-refused', testInfo);

    // roll back: champion is v1 again, as the seed left it
    await tab.getByRole('button', { name: 'Rollback' }).click();
    await expect(message).toHaveText(
      'digits@champion rolled back from v2 to v1'
    );
    await expect(aliases('1')).toContainText('champion');

    // Deployments: deploy the champion, see it running, stop it
    tab = await openTab(panel, 'Deployments');
    await dropdown(tab, 'serve').selectOption('digits@champion');
    await tab.getByRole('button', { name: 'Deploy' }).click();
    const deployed = tab.locator('.jp-mlops-widget-message');
    await expect(deployed).toContainText(
      'deployed digits@champion as digits-',
      { timeout: 180_000 }
    );
    const deployments = tab.locator('table.jp-mlops-widget-deployments');
    await expect(deployments).toContainText('running');
    await expect(deployments).toContainText('v1 100%');
    await shoot(panel, 'panel-deployments', testInfo);
    await tab.getByRole('button', { name: 'Stop' }).click();
    await expect(deployed).toContainText('(captured traffic kept)', {
      timeout: 120_000
    });
    await expect(deployments).toContainText('stopped');

    // Drift: two of the notebook's tables; verdict, per-column table and plotly chart
    tab = await openTab(panel, 'Drift');
    await expect(dropdown(tab, 'reference').locator('option')).toContainText([
      'variable recent_df',
      'variable train_df'
    ]);
    await dropdown(tab, 'reference').selectOption({
      label: 'variable train_df'
    });
    await dropdown(tab, 'current').selectOption({
      label: 'variable recent_df'
    });
    await tab.getByRole('button', { name: 'Compare' }).click();
    await expect(tab.locator('.jp-mlops-widget-verdict')).toContainText(
      'DRIFT: 2 of 2 columns drifted (100%): x0, x1',
      { timeout: 180_000 }
    );
    await expect(tab.locator('table.jp-mlops-widget-drift')).toContainText(
      'x1'
    );
    await expect(tab.locator('.js-plotly-plot')).toBeVisible();
    await shoot(panel, 'panel-drift', testInfo);

    // the saved notebook holds the widget views, not plotly.js nor the figures' data
    await page.notebook.save();
    const response = await page.request.get(
      `/api/contents/${tmpPath}/${name}?content=0`
    );
    expect(response.ok()).toBeTruthy();
    const size = (await response.json()).size as number;
    testInfo.annotations.push({
      type: 'notebook-size',
      description: `${size} bytes`
    });
    expect(size).toBeLessThan(100_000);
  });

  test('a notebook with saved panel outputs reopens with its chart and no error', async ({
    page
  }, testInfo) => {
    await runPanelNotebook(page);
    const panel = page.locator('.jp-mlops-widget-panel');
    await expect(panel).toBeVisible({ timeout: 180_000 });
    // the drift tab draws a plotly chart, so the saved outputs hold one
    const tab = await openTab(panel, 'Drift');
    await dropdown(tab, 'reference').selectOption({
      label: 'variable train_df'
    });
    await dropdown(tab, 'current').selectOption({
      label: 'variable recent_df'
    });
    await tab.getByRole('button', { name: 'Compare' }).click();
    await expect(tab.locator('.js-plotly-plot')).toBeVisible({
      timeout: 120_000
    });
    await page.notebook.save();

    // every console error of the page from its load on, whoever logs it: the TypeError
    // "reading 'observe'" came from reopening saved widget outputs
    const heard: string[] = [];
    page.on('console', message => {
      // an error from anyone, and a shared-module warning of ours or of plotly 5's
      // JupyterLab 3 build of jupyterlab-plotly ("wants @lumino/widgets ^1"), which the
      // page no longer loads: the figures are drawn by this extension's renderer
      const where = message.location().url ?? '';
      if (
        message.type() === 'error' ||
        (SHARED_VERSION.test(message.text()) &&
          /jupyter-mlops|jupyterlab-plotly/.test(where))
      ) {
        heard.push(`${message.type()}: ${message.text()} (${where})`);
      }
    });
    page.on('pageerror', error => heard.push(`uncaught: ${error.message}`));
    // a plain reload: JupyterLab restores its layout, so the notebook reopens from disk
    await page.evaluate(() => window.location.reload());
    const reopened = page
      .locator('.jp-NotebookPanel')
      .filter({ visible: true });
    await expect(reopened.locator('.jp-mlops-widget-panel')).toBeVisible({
      timeout: 120_000
    });
    await expect(reopened.locator('.js-plotly-plot')).toBeVisible({
      timeout: 60_000
    });
    await shoot(reopened, 'panel-reopened', testInfo);
    expect(heard).toEqual([]);
  });
});
