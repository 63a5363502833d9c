/**
 * After the last test, failed or not, and before Playwright stops the Jupyter server: shut
 * down its kernels and stop every model server of the seeded project (stop_servers.py).
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

import { FullConfig } from '@playwright/test';

export default async function globalTeardown(
  config: FullConfig
): Promise<void> {
  const root = process.env.JUPYTERLAB_GALATA_ROOT_DIR;
  if (!root) {
    return;
  }
  const url =
    config.webServer?.url?.replace(/\/lab\/?$/, '') ?? 'http://localhost:8888';
  execFileSync(
    process.env.PYTHON ?? 'python',
    [path.join(__dirname, 'stop_servers.py'), root, url],
    { stdio: 'inherit', timeout: 300_000 }
  );
}
