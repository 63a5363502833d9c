import { ISignal, Signal } from '@lumino/signaling';
import { IDisposable } from '@lumino/disposable';

import { ApiError, NOT_MODIFIED, call, request } from './api';
import { ILoadable, empty, toApiError } from './loadable';
import { Poller } from './poller';
import {
  ICellRun,
  IRunComparison,
  IRunDetail,
  IRunsPage,
  Routes
} from './tokens';

/** Poll every second while the kernel works and for a while after. */
export const ACTIVE_INTERVAL = 1000;
/** How long after the kernel went idle we keep polling fast (the drain lands late). */
export const ACTIVE_GRACE = 8000;
/** Idle but visible. */
export const IDLE_INTERVAL = 10000;
/** The sidebar is collapsed or the browser tab is in the background. */
export const HIDDEN_INTERVAL = 30000;

const PAGE_SIZE = 50;

/** A row's stable key: the journal record id survives the move into MLflow. */
export function rowKey(run: ICellRun): string {
  return (
    run.record_id || run.run_id || `${run.start_time}:${run.execution_count}`
  );
}

/**
 * Journal records not yet stored, then stored runs, newest first, without duplicates (pages
 * are offsets into a list that grows at the front, so a later page can repeat a row).
 */
export function mergeRows(
  page: IRunsPage | null,
  older: ICellRun[]
): ICellRun[] {
  if (!page) {
    return [];
  }
  const stored = [...page.runs, ...older];
  const storedKeys = new Set(stored.map(rowKey));
  const pending = page.pending.filter(run => !storedKeys.has(rowKey(run)));
  const seen = new Set<string>();
  return [...pending, ...stored]
    .sort((a, b) => b.start_time - a.start_time)
    .filter(run => {
      const key = rowKey(run);
      if (seen.has(key)) {
        return false;
      }
      seen.add(key);
      return true;
    });
}

/**
 * The cell runs of one notebook, kept fresh: polled with the server's ETag, fast while the
 * notebook's kernel is (or just was) busy, slowly when idle or hidden.
 */
export class RunsModel implements IDisposable {
  constructor() {
    this._poller = new Poller(
      () => this.refresh(),
      () => this.interval()
    );
  }

  readonly changed: ISignal<this, void> = new Signal<this, void>(this);

  get notebook(): string | null {
    return this._notebook;
  }

  get page(): ILoadable<IRunsPage> {
    return this._page;
  }

  get rows(): ICellRun[] {
    return mergeRows(this._page.value, this._older);
  }

  get hasMore(): boolean {
    return this._nextToken !== null;
  }

  get loadingMore(): boolean {
    return this._loadingMore;
  }

  /** Scrolls to and selects the cell of the current notebook; false: it is not there. */
  goToCell: ((cellId: string) => Promise<boolean>) | null = null;
  /** Opens a stored run in MLflow's UI (set by the plugin). */
  openInMlflow: ((runId: string) => void) | null = null;

  get selected(): string | null {
    return this._selected;
  }

  get detail(): ILoadable<IRunDetail> {
    return this._detail;
  }

  get isDisposed(): boolean {
    return this._poller.isDisposed;
  }

  /** Follows another notebook (a path relative to the server root), or none. */
  setNotebook(path: string | null): void {
    if (path === this._notebook) {
      return;
    }
    this._notebook = path;
    this._page = empty();
    this._older = [];
    this._nextToken = null;
    this._etag = null;
    this._selected = null;
    this._detail = empty();
    this._picked = [];
    this._comparison = null;
    this.emit();
    this._poller.wake();
  }

  /** The notebook's kernel started or finished work: poll fast for a while. */
  noteActivity(busy: boolean): void {
    this._busy = busy;
    this._lastActivity = Date.now();
    this._poller.wake(busy ? ACTIVE_INTERVAL : 0);
  }

  setVisible(visible: boolean): void {
    const wasHidden = !this._visible;
    this._visible = visible;
    if (visible && wasHidden) {
      this._poller.wake();
    }
  }

  interval(): number {
    const recent = Date.now() - this._lastActivity < ACTIVE_GRACE;
    const waiting = (this._page.value?.pending.length ?? 0) > 0;
    if (
      !this._visible ||
      (typeof document !== 'undefined' && document.hidden)
    ) {
      return HIDDEN_INTERVAL;
    }
    return this._busy || recent || waiting ? ACTIVE_INTERVAL : IDLE_INTERVAL;
  }

  async refresh(): Promise<void> {
    const notebook = this._notebook;
    if (notebook === null) {
      return;
    }
    try {
      const answer = await request<IRunsPage>(
        Routes.runs(notebook, PAGE_SIZE),
        {
          etag: this._etag ?? undefined
        }
      );
      if (notebook !== this._notebook) {
        return;
      }
      if (answer.value === NOT_MODIFIED) {
        if (this._page.error) {
          this._page.error = null;
          this.emit();
        }
        return;
      }
      this._etag = answer.etag;
      this._page = { value: answer.value, error: null, loaded: true };
      if (this._older.length === 0) {
        this._nextToken = answer.value.next_page_token;
      }
      this.refreshSelected();
    } catch (error) {
      if (notebook !== this._notebook) {
        return;
      }
      this._page = { ...this._page, error: toApiError(error), loaded: true };
      this._etag = null;
    }
    this.emit();
  }

  /** Appends the next page of older stored runs. */
  async loadMore(): Promise<void> {
    const notebook = this._notebook;
    const token = this._nextToken;
    if (notebook === null || token === null || this._loadingMore) {
      return;
    }
    this._loadingMore = true;
    this.emit();
    try {
      const page = await call<IRunsPage>(
        Routes.runs(notebook, PAGE_SIZE, token)
      );
      if (notebook === this._notebook) {
        this._older = [...this._older, ...page.runs];
        this._nextToken = page.next_page_token;
      }
    } catch (error) {
      this._page = { ...this._page, error: toApiError(error) };
    } finally {
      this._loadingMore = false;
      this.emit();
    }
  }

  /** Opens (or closes, when already open) the details of one row. */
  async select(run: ICellRun | null): Promise<void> {
    const key = run ? rowKey(run) : null;
    if (key === null || key === this._selected) {
      this._selected = null;
      this._detail = empty();
      this.emit();
      return;
    }
    this._selected = key;
    this._detail = empty();
    this.emit();
    await this.fetchDetail(run!);
  }

  /** Stored runs picked for comparison, in the order they were picked. */
  get picked(): string[] {
    return this._picked;
  }

  /** null: not asked for since the picks last changed. */
  get comparison(): ILoadable<IRunComparison> | null {
    return this._comparison;
  }

  /** Adds a stored run to the comparison, or takes it out. */
  togglePick(runId: string): void {
    this._picked = this._picked.includes(runId)
      ? this._picked.filter(id => id !== runId)
      : [...this._picked, runId];
    this._comparison = null;
    this.emit();
  }

  clearPicks(): void {
    this._picked = [];
    this._comparison = null;
    this.emit();
  }

  /** Params and metrics of the picked runs side by side. */
  async compare(): Promise<void> {
    const ids = [...this._picked];
    this._comparison = { value: null, error: null, loaded: false };
    this.emit();
    try {
      const found = await call<IRunComparison>(Routes.compare(ids));
      if (ids.join() === this._picked.join()) {
        this._comparison = { value: found, error: null, loaded: true };
      }
    } catch (error) {
      this._comparison = {
        value: null,
        error: toApiError(error),
        loaded: true
      };
    }
    this.emit();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poller.dispose();
    Signal.clearData(this);
  }

  private refreshSelected(): void {
    if (this._selected === null || this._detail.value) {
      return;
    }
    // a row opened while pending gets its stored details once it has a run id
    const row = this.rows.find(run => rowKey(run) === this._selected);
    if (row?.run_id) {
      void this.fetchDetail(row);
    }
  }

  private async fetchDetail(run: ICellRun): Promise<void> {
    const key = rowKey(run);
    if (!run.run_id) {
      this._detail = {
        value: null,
        error: new ApiError(
          0,
          'This run is still in the kernel journal; its details appear once it is stored.',
          'Pending'
        ),
        loaded: true
      };
      this.emit();
      return;
    }
    try {
      const detail = await call<IRunDetail>(Routes.run(run.run_id));
      if (key === this._selected) {
        this._detail = { value: detail, error: null, loaded: true };
      }
    } catch (error) {
      if (key === this._selected) {
        this._detail = { value: null, error: toApiError(error), loaded: true };
      }
    }
    this.emit();
  }

  private emit(): void {
    (this.changed as Signal<this, void>).emit();
  }

  private _poller: Poller;
  private _notebook: string | null = null;
  private _page: ILoadable<IRunsPage> = empty();
  private _older: ICellRun[] = [];
  private _nextToken: string | null = null;
  private _etag: string | null = null;
  private _busy = false;
  private _lastActivity = 0;
  private _visible = true;
  private _loadingMore = false;
  private _selected: string | null = null;
  private _detail: ILoadable<IRunDetail> = empty();
  private _picked: string[] = [];
  private _comparison: ILoadable<IRunComparison> | null = null;
}
