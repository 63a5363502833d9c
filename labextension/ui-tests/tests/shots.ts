import * as path from 'path';

import { Locator, TestInfo } from '@playwright/test';

/** Screenshots are kept in ui-tests/screenshots/ and attached to the test's report. */
export const SCREENSHOTS = path.join(__dirname, '..', 'screenshots');

export async function shoot(
  target: Locator,
  name: string,
  testInfo: TestInfo
): Promise<void> {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await target.screenshot({ path: file, animations: 'disabled' });
  await testInfo.attach(name, { path: file, contentType: 'image/png' });
}
