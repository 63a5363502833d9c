import { APIRequestContext } from '@playwright/test';

const API = '/jupyter-mlops/api/deployments';

/**
 * Stop every deployment of the served project that is not stopped yet, through the same
 * REST API the sidebar uses. Each spec calls it after each test, so a failed test leaves no
 * model server behind for the next one; the global teardown is the last resort.
 */
export async function stopDeployments(
  request: APIRequestContext
): Promise<void> {
  const listed = await request.get(API, { timeout: 120_000 });
  if (!listed.ok()) {
    return;
  }
  const { deployments } = (await listed.json()) as {
    deployments: { id: string; status: string }[];
  };
  for (const d of deployments.filter(d => d.status !== 'stopped')) {
    await request.delete(`${API}/${encodeURIComponent(d.id)}`, {
      timeout: 120_000
    });
  }
}

/** Shut down every kernel session of the server, so a failed test leaves no kernel. */
export async function stopKernels(request: APIRequestContext): Promise<void> {
  const listed = await request.get('/api/sessions', { timeout: 60_000 });
  if (!listed.ok()) {
    return;
  }
  for (const s of (await listed.json()) as { id: string }[]) {
    await request.delete(`/api/sessions/${encodeURIComponent(s.id)}`, {
      timeout: 60_000
    });
  }
}
