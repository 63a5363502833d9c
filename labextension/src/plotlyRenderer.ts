/**
 * A renderer for plotly's mime bundle (`application/vnd.plotly.v1+json`), the figures of the
 * panel and of `fig.show()`.
 *
 * plotly 5 ships `jupyterlab-plotly` built for JupyterLab 3 (lumino 1): loading it warns on
 * every page and JupyterLab lists it as incompatible. The server extension keeps that build
 * off the page, and this renderer takes its place, with plotly.js loaded only when a figure
 * is first drawn. It ranks after plotly's own renderer, so a JupyterLab 4 build of
 * `jupyterlab-plotly` (plotly 6) renders when it is there.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

interface IPlotly {
  react(node: HTMLElement, figure: IFigure): Promise<unknown>;
  purge(node: HTMLElement): void;
  Plots: { resize(node: HTMLElement): void };
}

interface IFigure {
  data?: unknown[];
  layout?: Record<string, unknown>;
  frames?: unknown[];
  config?: Record<string, unknown>;
}

let plotly: Promise<IPlotly> | null = null;

/** plotly.js, fetched once, in its own chunk, when the first figure is drawn. */
function loadPlotly(): Promise<IPlotly> {
  if (plotly === null) {
    plotly = import('plotly.js-dist-min').then(
      module => ((module as { default?: IPlotly }).default ?? module) as IPlotly
    );
  }
  return plotly;
}

export class PlotlyFigure extends Widget implements IRenderMime.IRenderer {
  private _plot: HTMLDivElement;
  private _drawn = false;

  constructor(private _mimeType: string) {
    super();
    this.addClass('jp-mlops-plotly');
    this._plot = document.createElement('div');
    this._plot.className = 'jp-mlops-plotly-plot';
    this.node.appendChild(this._plot);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const figure = (model.data[this._mimeType] ?? {}) as IFigure;
    const config = {
      displaylogo: false,
      responsive: true,
      ...(figure.config ?? {})
    };
    const Plotly = await loadPlotly();
    if (this.isDisposed) {
      return;
    }
    // the whole figure, frames included, so an animated figure keeps its frames
    await Plotly.react(this._plot, {
      data: figure.data ?? [],
      layout: figure.layout ?? {},
      frames: figure.frames,
      config
    });
    this._drawn = true;
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._resize();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._resize();
  }

  dispose(): void {
    if (this._drawn && plotly !== null) {
      const node = this._plot;
      void plotly.then(Plotly => Plotly.purge(node));
    }
    super.dispose();
  }

  private _resize(): void {
    if (this._drawn && plotly !== null && this.isVisible) {
      const node = this._plot;
      void plotly.then(Plotly => Plotly.Plots.resize(node));
    }
  }
}

const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [PLOTLY_MIME],
  createRenderer: options => new PlotlyFigure(options.mimeType)
};

/** Ranks after `jupyterlab-plotly`'s own (0): where a JupyterLab 4 build of it is
 * installed, that one renders. */
const extension: IRenderMime.IExtension = {
  id: 'jupyter-mlops:plotly',
  description:
    "Renders plotly's figures without the JupyterLab 3 build of jupyterlab-plotly.",
  rendererFactory,
  rank: 10,
  dataType: 'json'
};

export default extension;
