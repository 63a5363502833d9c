import { Page } from '@playwright/test';

/** Where the extension's own code runs from: its bundle, its REST API, its log lines. */
const OURS = /jupyter-mlops|jupyter_mlops/;

/** Module federation's warnings of an extension built against other shared packages. */
export const SHARED_VERSION = /Unsatisfied version|No satisfying version/;

const watched = new WeakMap<Page, string[]>();

/**
 * Collects the console errors and uncaught exceptions that come from this extension
 * (its bundle, its API, its log prefix) from now on; JupyterLab's own are not ours to fail on.
 */
export function watchConsole(page: Page): void {
  const found: string[] = [];
  watched.set(page, found);
  page.on('console', message => {
    const where = message.location().url ?? '';
    if (SHARED_VERSION.test(message.text()) && OURS.test(where)) {
      // the bundle built against shared packages this JupyterLab does not have
      found.push(`shared module version: ${message.text()} (${where})`);
      return;
    }
    if (message.type() !== 'error') {
      return;
    }
    // a 4xx the sidebar answers in words (a refused promotion, a bad alias) is a reply,
    // not a fault; a 5xx is one
    if (/status of 4\d\d/.test(message.text())) {
      return;
    }
    if (OURS.test(message.text()) || OURS.test(where)) {
      found.push(`console error: ${message.text()} (${where})`);
    }
  });
  // a request the browser gave up on (DevTools' net::ERR_ABORTED) is a fault too
  page.on('requestfailed', request => {
    if (OURS.test(request.url())) {
      found.push(
        `request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`
      );
    }
  });
  page.on('pageerror', error => {
    if (OURS.test(`${error.message}\n${error.stack ?? ''}`)) {
      found.push(`uncaught: ${error.message}`);
    }
  });
}

/** What `watchConsole` collected on `page`. */
export function consoleErrors(page: Page): string[] {
  return watched.get(page) ?? [];
}
