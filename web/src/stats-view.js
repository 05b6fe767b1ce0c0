import uPlot from 'uplot';
import { h, clear } from './dom.js';
import { t, tf } from './i18n.js';

// StatsView draws GET /api/admin/stats: tiles with the company's figures,
// a table per counselor and two charts of the day series (uPlot, drawn on
// canvas; its only styles are set through the DOM, which the pages'
// Content-Security-Policy allows).

const CHART_HEIGHT = 220;
// Counts step by whole numbers.
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

// duration renders seconds as the tiles and table show them.
export function duration(secs) {
  if (secs === null || secs === undefined) return t('noData');
  const s = Math.round(secs);
  if (s < 60) return tf('secondsShort', { n: s });
  if (s < 3600) return tf('minutesShort', { m: Math.floor(s / 60), s: s % 60 });
  return tf('hoursShort', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

function csat(f) {
  if (f.csatAverage === null || f.csatAverage === undefined) return t('noData');
  return `★ ${f.csatAverage.toFixed(2)} (${tf('csatCount', { n: f.csatCount })})`;
}

const minutes = (secs) => (secs === null || secs === undefined ? null : Math.round(secs / 6) / 10);

export class StatsView {
  constructor({ tiles, body, volume, times }) {
    this.tiles = tiles;
    this.body = body;
    this.volumeEl = volume;
    this.timesEl = times;
    this.stats = null;
    this.charts = [];
    window.addEventListener('resize', () => {
      for (const c of this.charts) c.setSize({ width: this.width(c.root.parentElement), height: CHART_HEIGHT });
    });
  }

  width(el) { return Math.max(240, el.clientWidth || 480); }

  render(stats) {
    this.stats = stats;
    const f = stats.company;
    clear(this.tiles);
    const tile = (key, label, value) => h('div', { class: 'stat-tile', dataset: { key } },
      h('span', { class: 'stat-label' }, label), h('strong', { class: 'stat-value' }, value));
    this.tiles.append(
      tile('roomsHandled', t('roomsHandled'), String(f.roomsHandled)),
      tile('medianFirstResponse', t('medianFirstResponse'), duration(f.medianFirstResponseSeconds)),
      tile('medianHandling', t('medianHandling'), duration(f.medianHandlingSeconds)),
      tile('csat', t('csat'), csat(f)),
      tile('messages', t('messages'), String(f.messages)));
    clear(this.body);
    for (const m of stats.members) {
      this.body.append(h('tr', { dataset: { login: m.loginName } },
        h('td', {}, h('div', { class: 'strong' }, m.name), h('div', { class: 'muted' }, m.loginName)),
        h('td', { class: 'stat-handled' }, String(m.roomsHandled)),
        h('td', {}, duration(m.medianFirstResponseSeconds)),
        h('td', {}, duration(m.medianHandlingSeconds)),
        h('td', {}, csat(m)),
        h('td', { class: 'stat-messages' }, String(m.messages))));
    }
    this.drawCharts();
  }

  relabel() { if (this.stats) this.render(this.stats); }

  drawCharts() {
    for (const c of this.charts) c.destroy();
    this.charts = [];
    const days = this.stats.days;
    const xs = days.map((_, i) => i);
    const labels = days.map((d) => d.date.slice(5));
    const x = {
      scale: 'x',
      values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? labels[i] || '' : '')),
      grid: { show: false },
    };
    const common = (el, series, axes, scales, data) => {
      clear(el);
      this.charts.push(new uPlot({
        width: this.width(el), height: CHART_HEIGHT, axes: [x, ...axes],
        series: [{ label: t('date'), value: (u, i) => (i === null || i === undefined ? '--' : days[i].date) }, ...series],
        scales: { x: { time: false, range: [-0.5, Math.max(0.5, days.length - 0.5)] }, ...scales },
        cursor: { drag: { x: false, y: false } },
      }, [xs, ...data], el));
    };
    const bars = uPlot.paths.bars({ size: [0.6, 48] });
    common(this.volumeEl, [
      { label: t('roomsHandled'), stroke: '#2563eb', fill: 'rgba(37,99,235,.35)', paths: bars, points: { show: false } },
      { label: t('messages'), stroke: '#16803c', width: 2, scale: 'msg' },
    ], [
      { scale: 'y', incrs: COUNT_STEPS },
      { scale: 'msg', side: 1, grid: { show: false }, incrs: COUNT_STEPS },
    ], { y: { range: (u, lo, hi) => [0, Math.max(1, hi)] }, msg: { range: (u, lo, hi) => [0, Math.max(1, hi)] } },
    [days.map((d) => d.roomsHandled), days.map((d) => d.messages)]);
    common(this.timesEl, [
      { label: t('firstResponseMin'), stroke: '#d97706', width: 2, spanGaps: true },
      { label: t('handlingMin'), stroke: '#7c3aed', width: 2, spanGaps: true },
      { label: t('csat'), stroke: '#e11d48', width: 2, dash: [6, 4], scale: 'csat', spanGaps: true },
    ], [
      { scale: 'y' },
      { scale: 'csat', side: 1, grid: { show: false }, incrs: [1] },
    ], { y: { range: (u, lo, hi) => [0, Math.max(1, hi || 1)] }, csat: { range: [0, 5] } },
    [days.map((d) => minutes(d.medianFirstResponseSeconds)), days.map((d) => minutes(d.medianHandlingSeconds)), days.map((d) => d.csatAverage)]);
  }
}
