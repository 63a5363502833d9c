import { ISignal, Signal } from '@lumino/signaling';
import { IDisposable } from '@lumino/disposable';

import { call, getCached } from './api';
import { ILoadable, empty, load, toApiError } from './loadable';
import { Poller } from './poller';
import {
  IAlerts,
  IAliasMove,
  IAuditWritten,
  IDeployment,
  IModel,
  IMonitorResult,
  IMonitorStatus,
  IPipelineRun,
  IPromoteRequest,
  IPromotion,
  IStatus,
  Routes
} from './tokens';

/** These change on the user's own actions or slowly: no need to poll them fast. */
export const CATALOG_INTERVAL = 15000;
export const CATALOG_HIDDEN_INTERVAL = 60000;
/** A pipeline is running: its steps change state every few seconds. */
export const PIPELINE_RUNNING_INTERVAL = 2000;

/**
 * The project-wide sections: server status, pipeline runs, models, deployments and their
 * monitoring. Actions (promote, rollback, stop) refresh what they changed.
 */
export class CatalogModel implements IDisposable {
  constructor() {
    this._poller = new Poller(
      () => this.refresh(),
      () => this.interval()
    );
  }

  readonly changed: ISignal<this, void> = new Signal<this, void>(this);

  readonly status: ILoadable<IStatus> = empty();
  readonly pipelines: ILoadable<IPipelineRun[]> = empty();
  readonly models: ILoadable<IModel[]> = empty();
  readonly deployments: ILoadable<IDeployment[]> = empty();
  readonly alerts: ILoadable<IAlerts> = empty();
  readonly monitors = new Map<string, ILoadable<IMonitorStatus>>();

  get isDisposed(): boolean {
    return this._poller.isDisposed;
  }

  start(): void {
    this._poller.wake();
  }

  setVisible(visible: boolean): void {
    const wasHidden = !this._visible;
    this._visible = visible;
    if (visible && wasHidden) {
      this._poller.wake();
    }
  }

  /** Refresh soon: something this sidebar cannot see may have changed (a pipeline ran). */
  poke(delay = 0): void {
    this._poller.wake(delay);
  }

  interval(): number {
    const hidden =
      !this._visible || (typeof document !== 'undefined' && document.hidden);
    if (hidden) {
      return CATALOG_HIDDEN_INTERVAL;
    }
    const running = (this.pipelines.value ?? []).some(
      run => run.status === 'RUNNING'
    );
    return running ? PIPELINE_RUNNING_INTERVAL : CATALOG_INTERVAL;
  }

  async refresh(): Promise<void> {
    if (!this.status.value) {
      await load(this.status, () => getCached<IStatus>(Routes.status()));
      if (this.status.error) {
        // nothing else can work: say why once instead of five times
        this.emit();
        return;
      }
    }
    await Promise.all([
      load(
        this.pipelines,
        async () =>
          (
            await getCached<{ pipelines: IPipelineRun[] }>(
              Routes.pipelines(undefined, 10)
            )
          ).pipelines
      ),
      load(
        this.models,
        async () =>
          (await getCached<{ models: IModel[] }>(Routes.models())).models
      ),
      load(this.alerts, () => getCached<IAlerts>(Routes.alerts(20))),
      load(
        this.deployments,
        async () =>
          (
            await getCached<{ deployments: IDeployment[] }>(
              Routes.deployments()
            )
          ).deployments
      )
    ]);
    await this.refreshMonitors();
    this.emit();
  }

  /** Moves `alias` to `version`; a refusal by the gates rejects with their reasons. */
  async promote(model: string, body: IPromoteRequest): Promise<IPromotion> {
    try {
      return await call<IPromotion>(Routes.promote(model), {
        method: 'POST',
        body
      });
    } finally {
      await this.refreshModels();
    }
  }

  async rollback(
    model: string,
    alias: string,
    reason = ''
  ): Promise<IAliasMove> {
    try {
      return await call<IAliasMove>(Routes.rollback(model), {
        method: 'POST',
        body: { alias, reason }
      });
    } finally {
      await this.refreshModels();
    }
  }

  /** Opens a file of the served root in JupyterLab (set by the plugin). */
  openPath: ((path: string) => Promise<void>) | null = null;

  /** Writes the audit report of ``model`` ``version`` and opens its HTML page. */
  async audit(model: string, version: string): Promise<IAuditWritten> {
    const written = await call<IAuditWritten>(Routes.audit(), {
      method: 'POST',
      body: { model: `${model}/${version}` }
    });
    if (this.openPath) {
      await this.openPath(written.html);
    }
    return written;
  }

  async stop(deployment: string): Promise<IDeployment> {
    return this.changeDeployments(() =>
      call<IDeployment>(Routes.deployment(deployment), { method: 'DELETE' })
    );
  }

  /** Serves `spec` (model@alias or model/version); resolves once the server answers. */
  async deploy(spec: string, name?: string): Promise<IDeployment> {
    return this.changeDeployments(() =>
      call<IDeployment>(Routes.deployments(), {
        method: 'POST',
        body: name ? { model: spec, name } : { model: spec }
      })
    );
  }

  /** Re-weights a deployment's traffic: version -> percent, summing to 100. */
  async setTraffic(
    deployment: string,
    weights: { [version: string]: number }
  ): Promise<IDeployment> {
    return this.changeDeployments(() =>
      call<IDeployment>(Routes.traffic(deployment), {
        method: 'PUT',
        body: { weights }
      })
    );
  }

  /** Blue/green: all of a deployment's traffic to one version (3, model@alias). */
  async switchTo(deployment: string, spec: string): Promise<IDeployment> {
    return this.changeDeployments(() =>
      call<IDeployment>(Routes.switch(deployment), {
        method: 'POST',
        body: { model: spec }
      })
    );
  }

  /** Checks a deployment's recent traffic now, as a scheduled check would (its policy acts). */
  async checkNow(deployment: string): Promise<IMonitorResult> {
    try {
      return await call<IMonitorResult>(Routes.monitor(deployment), {
        method: 'POST',
        body: { act: true }
      });
    } finally {
      await Promise.all([
        this.refreshMonitors(),
        load(this.alerts, () => getCached<IAlerts>(Routes.alerts(20)))
      ]);
      this.emit();
    }
  }

  private async changeDeployments(
    change: () => Promise<IDeployment>
  ): Promise<IDeployment> {
    try {
      return await change();
    } finally {
      await load(
        this.deployments,
        async () =>
          (
            await getCached<{ deployments: IDeployment[] }>(
              Routes.deployments()
            )
          ).deployments
      );
      await this.refreshMonitors();
      this.emit();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poller.dispose();
    Signal.clearData(this);
  }

  private async refreshModels(): Promise<void> {
    await load(
      this.models,
      async () =>
        (await getCached<{ models: IModel[] }>(Routes.models())).models
    );
    this.emit();
  }

  private async refreshMonitors(): Promise<void> {
    const live = (this.deployments.value ?? []).filter(
      d => d.status !== 'stopped'
    );
    const ids = new Set(live.map(d => d.id));
    for (const id of [...this.monitors.keys()]) {
      if (!ids.has(id)) {
        this.monitors.delete(id);
      }
    }
    await Promise.all(
      live.map(async d => {
        const slot = this.monitors.get(d.id) ?? empty<IMonitorStatus>();
        this.monitors.set(d.id, slot);
        try {
          slot.value = await getCached<IMonitorStatus>(Routes.monitor(d.id));
          slot.error = null;
        } catch (error) {
          slot.error = toApiError(error);
        }
        slot.loaded = true;
      })
    );
  }

  private emit(): void {
    (this.changed as Signal<this, void>).emit();
  }

  private _poller: Poller;
  private _visible = true;
}
