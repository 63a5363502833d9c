/**
 * Galata's defaults, in Debian's Chromium (Playwright downloads no browser here), against a
 * Jupyter server started on a freshly seeded project (jupyter_server_test_config.py).
 * Every spec in tests/ shares that server and project. Waits are on states with deadlines
 * generous enough for a busy 2-core machine; what the tests start is stopped afterwards
 * (each spec's afterEach, then global-teardown.ts, then the server's own shutdown).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { PlaywrightTestConfig } from '@playwright/test';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// the served project, known here so the global teardown finds what the tests started in it;
// workers and the server inherit it from the runner, which sets it first
process.env.JUPYTERLAB_GALATA_ROOT_DIR ??= fs.mkdtempSync(
  path.join(os.tmpdir(), 'mlops-ui-')
);

const config: PlaywrightTestConfig = {
  ...baseConfig,
  testDir: './tests',
  outputDir: './test-results',
  reporter: [[process.env.CI ? 'line' : 'list'], ['html', { open: 'never' }]],
  // a kernel start, a model server and Evidently's imports on 2 busy cores take a while
  timeout: 600_000,
  expect: { timeout: 60_000 },
  retries: 0,
  workers: 1,
  use: {
    ...baseConfig.use,
    video: 'off',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: chromium,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic'
      ]
    }
  },
  globalTeardown: './global-teardown.ts',
  webServer: {
    command: 'jupyter lab --config jupyter_server_test_config.py',
    url: 'http://localhost:8888/lab',
    timeout: 300_000,
    // SIGTERM lets the server shut its kernels down; SIGKILL only after a minute
    gracefulShutdown: { signal: 'SIGTERM', timeout: 60_000 },
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe'
  }
};

export default config;
