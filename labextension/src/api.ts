import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { API_NAMESPACE, IErrorBody, IGateResult } from './tokens';

/** A failed call, with the words a user should read. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly kind = 'Error',
    readonly failed: IGateResult[] = []
  ) {
    super(message);
  }
}

/** The server answered 304: the caller's copy is current. */
export const NOT_MODIFIED = Symbol('not modified');

export interface IRequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  etag?: string;
}

export interface IAnswer<T> {
  value: T | typeof NOT_MODIFIED;
  etag: string | null;
}

/** What a user reads when the extension's routes are not there at all. */
export const NOT_ENABLED =
  'The jupyter_mlops server extension is not enabled in this Jupyter server. ' +
  'Run `jupyter server extension enable jupyter_mlops` and restart JupyterLab.';

/**
 * Calls one route of the server extension through Jupyter's own connection, so the token,
 * cookie and XSRF header are handled by Jupyter.
 */
export async function request<T>(
  path: string,
  options: IRequestOptions = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IAnswer<T>> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, path);
  const init: RequestInit = { method: options.method ?? 'GET' };
  const headers: { [key: string]: string } = {};
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  if (options.etag) {
    headers['If-None-Match'] = options.etag;
  }
  // the browser's own HTTP cache would turn a 304 into a stale 200
  init.cache = 'no-store';
  init.headers = headers;

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(
      0,
      `The Jupyter server cannot be reached (${(error as Error).message}).`,
      'NetworkError'
    );
  }
  const etag = response.headers.get('ETag');
  if (response.status === 304) {
    // read the empty body all the same: a response left unread is cancelled when it is
    // collected, and the browser lists it as a failed request (net::ERR_ABORTED)
    await response.text();
    return { value: NOT_MODIFIED, etag };
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw toError(response.status, data);
  }
  return { value: data as T, etag };
}

function toError(status: number, data: unknown): ApiError {
  const body = data as IErrorBody | null;
  if (body && typeof body.message === 'string') {
    return new ApiError(status, body.message, body.error, body.failed ?? []);
  }
  if (status === 404) {
    return new ApiError(404, NOT_ENABLED, 'NotEnabled');
  }
  if (status === 403) {
    return new ApiError(
      403,
      'The Jupyter server refused the request: the session has expired. Reload the page.',
      'Forbidden'
    );
  }
  return new ApiError(status, `The server answered ${status}.`, 'HTTPError');
}

/** Calls a route and returns its body (no ETag handling). */
export async function call<T>(
  path: string,
  options: IRequestOptions = {}
): Promise<T> {
  const answer = await request<T>(path, options);
  if (answer.value === NOT_MODIFIED) {
    throw new ApiError(304, 'unexpected 304 without an ETag');
  }
  return answer.value;
}

/** The last answer to each GET with an ETag, by path. */
const answers = new Map<string, { etag: string; value: unknown }>();

/**
 * GETs a route with the ETag of its last answer: while nothing changed the server sends an
 * empty 304 and the last answer is returned again.
 */
export async function getCached<T>(path: string): Promise<T> {
  const known = answers.get(path);
  const answer = await request<T>(path, { etag: known?.etag });
  if (answer.value === NOT_MODIFIED) {
    if (known) {
      return known.value as T;
    }
    throw new ApiError(304, 'unexpected 304 without an ETag');
  }
  if (answer.etag) {
    answers.set(path, { etag: answer.etag, value: answer.value });
  } else {
    answers.delete(path);
  }
  return answer.value;
}
