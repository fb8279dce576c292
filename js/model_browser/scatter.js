// The ModelBrowser's scatter: top-1 against speed or size on a canvas, the selected model
// highlighted, the nearest dot under the pointer. Colours from JupyterLab's theme variables.
import { linearScale, linearTicks, logScale, logTicks, nearestPoint } from "../lib/table.js";

const PLOT_W = 440;
const PLOT_H = 270;
const MARGIN = { left: 46, right: 12, top: 10, bottom: 36 };

export const X_AXES = {
  gpu_img_s: { label: "GPU speed (img/s, log)", log: true },
  cpu_img_s: { label: "CPU speed (img/s, log)", log: true },
  params_m: { label: "Parameters (M, log)", log: true },
};

function cssVar(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {HTMLElement} caption
 * @param {HTMLElement} root where the theme variables are read
 * @param {Record<string, any>} cols the decoded catalog
 */
export function createScatter(canvas, caption, root, cols) {
  const dpr = Math.max(1, window.devicePixelRatio || 1);
  canvas.width = Math.round(PLOT_W * dpr);
  canvas.height = Math.round(PLOT_H * dpr);
  let plotted = { xs: new Float32Array(0), ys: new Float32Array(0), rows: new Int32Array(0), count: 0 };

  // Theme colours for the canvas, from JupyterLab's CSS variables.
  function readTheme() {
    return {
      fg: cssVar(root, "--jp-ui-font-color1", "#222"),
      fg2: cssVar(root, "--jp-ui-font-color2", "#666"),
      grid: cssVar(root, "--jp-border-color2", "#ddd"),
      brand: cssVar(root, "--jp-brand-color1", "#1976d2"),
      accent: cssVar(root, "--jp-warn-color1", "#f57c00"),
      font: cssVar(root, "--jp-ui-font-family", "sans-serif"),
      halo: cssVar(root, "--jp-layout-color1", "#fff"),
    };
  }

  function draw(order, xAxis, selectedRow) {
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, PLOT_W, PLOT_H);
    // Read on every draw: a view rendered before it is attached inherits no theme variables,
    // and JupyterLab may swap a theme's stylesheet in at any time.
    const { fg, fg2, grid, brand, accent, font, halo } = readTheme();
    const x0 = MARGIN.left;
    const x1 = PLOT_W - MARGIN.right;
    const y0 = PLOT_H - MARGIN.bottom;
    const y1 = MARGIN.top;
    const xv = cols[xAxis];
    const yv = cols.top1;
    ctx.font = `11px ${font}`;
    if (!xv || !yv) {
      ctx.fillStyle = fg2;
      ctx.fillText("No top-1 or speed data in this catalog.", x0, PLOT_H / 2);
      plotted.count = 0;
      return;
    }
    const usable = [];
    for (const i of order) if (xv[i] > 0 && Number.isFinite(xv[i]) && Number.isFinite(yv[i])) usable.push(i);
    const sx = X_AXES[xAxis].log ? logScale(xv, usable, x0, x1) : linearScale(xv, usable, x0, x1);
    const sy = linearScale(yv, usable, y0, y1);
    // axes and grid
    ctx.strokeStyle = grid;
    ctx.fillStyle = fg2;
    ctx.lineWidth = 1;
    if (sx && sy) {
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (const t of X_AXES[xAxis].log ? logTicks(sx.lo, sx.hi) : linearTicks(sx.lo, sx.hi)) {
        const x = Math.round(sx.scale(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, y1);
        ctx.lineTo(x, y0);
        ctx.stroke();
        ctx.fillText(t >= 1 ? t.toLocaleString("en-US") : String(t), x, y0 + 4);
      }
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (const t of linearTicks(sy.lo, sy.hi, 5)) {
        const y = Math.round(sy.scale(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x0, y);
        ctx.lineTo(x1, y);
        ctx.stroke();
        ctx.fillText(String(t), x0 - 4, y);
      }
    }
    ctx.strokeStyle = fg2;
    ctx.beginPath();
    ctx.moveTo(x0, y1);
    ctx.lineTo(x0, y0);
    ctx.lineTo(x1, y0);
    ctx.stroke();
    ctx.fillStyle = fg;
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(X_AXES[xAxis].label, (x0 + x1) / 2, PLOT_H - 2);
    ctx.save();
    ctx.translate(11, (y0 + y1) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText("Top-1 (%)", 0, 0);
    ctx.restore();

    const m = usable.length;
    if (plotted.xs.length < m) {
      plotted = { xs: new Float32Array(m), ys: new Float32Array(m), rows: new Int32Array(m), count: 0 };
    }
    plotted.count = m;
    if (!sx || !sy) {
      caption.textContent = "None of the shown models has both top-1 and this x value.";
      return;
    }
    ctx.fillStyle = brand;
    ctx.globalAlpha = 0.45;
    ctx.beginPath();
    for (let k = 0; k < m; k++) {
      const i = usable[k];
      const x = sx.scale(xv[i]);
      const y = sy.scale(yv[i]);
      plotted.xs[k] = x;
      plotted.ys[k] = y;
      plotted.rows[k] = i;
      ctx.moveTo(x + 2.5, y);
      ctx.arc(x, y, 2.5, 0, 2 * Math.PI);
    }
    ctx.fill();
    ctx.globalAlpha = 1;
    let captionText = `${m.toLocaleString("en-US")} of the ${order.length.toLocaleString("en-US")} shown models have top-1 and ${xAxis === "params_m" ? "size" : "speed"} figures.`;
    if (selectedRow >= 0) {
      const i = selectedRow;
      if (xv[i] > 0 && Number.isFinite(yv[i]) && xv[i] >= sx.lo && xv[i] <= sx.hi && yv[i] >= sy.lo && yv[i] <= sy.hi) {
        const x = sx.scale(xv[i]);
        const y = sy.scale(yv[i]);
        ctx.fillStyle = accent;
        ctx.strokeStyle = fg;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.arc(x, y, 6, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
        ctx.textBaseline = "bottom";
        ctx.textAlign = x > (x0 + x1) / 2 ? "right" : "left";
        const lx = x + (x > (x0 + x1) / 2 ? -8 : 8);
        // a halo in the background colour keeps the label readable over the dots
        ctx.strokeStyle = halo;
        ctx.lineWidth = 3;
        ctx.lineJoin = "round";
        ctx.strokeText(cols.name[i], lx, y - 4);
        ctx.fillStyle = fg;
        ctx.fillText(cols.name[i], lx, y - 4);
      } else {
        captionText += " The selected model is not on the plot (no figures, or filtered out).";
      }
    }
    caption.textContent = captionText;
  }

  /** The catalog row of the dot nearest to a client point (within 6 px), or -1. */
  function rowAt(clientX, clientY) {
    const r = canvas.getBoundingClientRect();
    const x = ((clientX - r.left) * PLOT_W) / r.width;
    const y = ((clientY - r.top) * PLOT_H) / r.height;
    const k = nearestPoint(plotted.xs, plotted.ys, plotted.count, x, y, 6);
    return k < 0 ? -1 : plotted.rows[k];
  }

  /** Where row `row`'s dot is, in client coordinates, or null when it is not plotted. */
  function pointOf(row) {
    for (let k = 0; k < plotted.count; k++) {
      if (plotted.rows[k] === row) {
        const r = canvas.getBoundingClientRect();
        return { x: r.left + (plotted.xs[k] * r.width) / PLOT_W, y: r.top + (plotted.ys[k] * r.height) / PLOT_H };
      }
    }
    return null;
  }

  return { draw, rowAt, pointOf };
}
