import { IDisposable } from '@lumino/disposable';

/**
 * Runs `tick` again and again, one at a time, waiting `interval()` milliseconds between two
 * ticks. The interval is asked anew after every tick, so a caller can poll fast while a
 * kernel is busy and slowly when nothing happens; `wake()` brings the next tick forward.
 */
export class Poller implements IDisposable {
  constructor(
    private readonly tick: () => Promise<void>,
    private readonly interval: () => number
  ) {}

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Ticks after `delay` ms, or as soon as the tick in flight ends. */
  wake(delay = 0): void {
    if (this._disposed) {
      return;
    }
    if (this._running) {
      this._again = true;
      return;
    }
    const due = Date.now() + delay;
    if (this._timer !== null && due >= this._due) {
      return;
    }
    this.schedule(delay);
  }

  dispose(): void {
    this._disposed = true;
    this.clear();
  }

  private schedule(delay: number): void {
    this.clear();
    this._due = Date.now() + delay;
    this._timer = window.setTimeout(() => void this.run(), delay);
  }

  private clear(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private async run(): Promise<void> {
    this._timer = null;
    this._running = true;
    try {
      await this.tick();
    } catch (error) {
      // a tick reports its own errors in the model; the loop must go on
      console.warn('jupyter-mlops: poll failed', error);
    } finally {
      this._running = false;
    }
    if (this._disposed) {
      return;
    }
    const again = this._again;
    this._again = false;
    this.schedule(again ? 0 : this.interval());
  }

  private _timer: number | null = null;
  private _due = 0;
  private _running = false;
  private _again = false;
  private _disposed = false;
}
