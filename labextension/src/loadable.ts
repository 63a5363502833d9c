import { ApiError } from './api';

/** A value fetched from the server: what we have, and why the last fetch failed. */
export interface ILoadable<T> {
  value: T | null;
  error: ApiError | null;
  loaded: boolean;
}

export function empty<T>(): ILoadable<T> {
  return { value: null, error: null, loaded: false };
}

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) {
    return error;
  }
  return new ApiError(0, (error as Error)?.message ?? String(error));
}

/** Fetches into `slot`: keeps the last good value when a later fetch fails. */
export async function load<T>(
  slot: ILoadable<T>,
  fetch: () => Promise<T>
): Promise<void> {
  try {
    slot.value = await fetch();
    slot.error = null;
  } catch (error) {
    slot.error = toApiError(error);
  } finally {
    slot.loaded = true;
  }
}
