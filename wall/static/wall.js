// The sales-floor page: polls /api/snapshot and redraws in place; never reloads, never goes blank.
"use strict";

const LABELS = {
  en: {
    title: "Sales floor", team: "Team", month: "Month", today: "Today", updated: "Updated",
    waiting: "Waiting for the first publication of the warehouse…", lost: "connection lost, retrying",
    stale: (m) => `Data is ${m} min old: the refresh is not running`, leaders: "Leaders (won this month)",
    funnel: "Funnel of deals created this month", forgotten: "Deals with nothing planned", of: "of",
    page: (a, b) => `page ${a} of ${b}`, none: "none",
    kpis: { calls: "Calls", emails: "E-mails", invoices_issued: "Invoices issued", invoices_paid: "Invoices paid",
            new_deals: "New deals", won_deals: "Won deals", won_amount: "Won amount" },
  },
  ru: {
    title: "Отдел продаж", team: "Команда", month: "Месяц", today: "Сегодня", updated: "Обновлено",
    waiting: "Ждём первую публикацию хранилища…", lost: "нет связи, повторяем",
    stale: (m) => `Данные устарели на ${m} мин: обновление не работает`, leaders: "Лидеры (выиграно за месяц)",
    funnel: "Воронка сделок этого месяца", forgotten: "Сделки без запланированных дел", of: "из",
    page: (a, b) => `страница ${a} из ${b}`, none: "нет",
    kpis: { calls: "Звонки", emails: "Письма", invoices_issued: "Счета выставлены", invoices_paid: "Счета оплачены",
            new_deals: "Новые сделки", won_deals: "Выигранные", won_amount: "Сумма выигранных" },
  },
};

const settings = window.WALL_SETTINGS || {};
const params = new URLSearchParams(location.search);
const language = (() => {
  const chosen = params.get("lang") || settings.language || "auto";
  if (chosen === "ru" || chosen === "en") return chosen;
  return (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";
})();
const L = LABELS[language];
document.documentElement.lang = language;
document.documentElement.dataset.theme = params.get("theme") || settings.theme || "dark";

const state = { snapshot: null, version: null, page: 0, serverOffset: 0, publishedAt: null, renders: 0, fit: null };
window.wallState = state;   // for the tests: the page is never reloaded, so this object survives updates

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child));
  return node;
}

function number(value, kpi, currency) {
  if (value === null || value === undefined) return "–";
  const amount = kpi === "won_amount";
  return new Intl.NumberFormat(language === "ru" ? "ru-RU" : "en-US", amount && currency
    ? { style: "currency", currency, maximumFractionDigits: 0, notation: value >= 1e5 ? "compact" : "standard" }
    : { maximumFractionDigits: 0 }).format(value);
}

function bar(figures, kind) {
  const track = el("div", { class: `bar ${kind}` });
  const plan = figures.plan;
  if (!plan) return track;
  const share = Math.min(1, (figures.fact || 0) / plan);
  const expected = figures.expected !== undefined && figures.expected !== null ? figures.expected : plan;
  const fill = el("div", { class: "fill " + ((figures.fact || 0) >= expected ? "good" : "behind") });
  fill.style.width = `${share * 100}%`;
  track.append(fill);
  if (figures.expected !== undefined && figures.expected !== null) {
    const mark = el("div", { class: "mark", title: "expected by today" });
    mark.style.left = `${Math.min(1, figures.expected / plan) * 100}%`;
    track.append(mark);
  }
  return track;
}

function kpiCell(kpis, kpi, currency) {
  const month = (kpis[kpi] || {}).month || {};
  const today = (kpis[kpi] || {}).today || {};
  const figure = el("div", { class: "figure", "data-kpi": kpi, "data-fact": month.fact ?? "" },
    number(month.fact, kpi, currency), " ", el("small", {}, month.plan ? `/ ${number(month.plan, kpi, currency)}` : ""));
  const todayFigure = el("small", { "data-today": today.fact ?? "" },
    number(today.fact, kpi, currency), " ", el("span", {}, today.plan ? `/ ${number(today.plan, kpi, currency)}` : ""));
  return el("td", {}, el("div", { class: "cell" }, figure, bar(month, "month"), bar(today, "today"), todayFigure));
}

function rowsPerPage() {   // an upper bound: renderPlans lowers it until every page fits
  const available = document.getElementById("plans").clientHeight;
  return Math.max(1, Math.floor(available / (window.innerHeight * 0.05)));
}

function drawPlans(s, section, pageSize, page) {
  const pages = Math.max(1, Math.ceil(s.managers.length / pageSize));
  const shown = s.managers.slice(page * pageSize, (page + 1) * pageSize);
  const head = el("tr", {}, el("th", { style: "width:23%" }, `${L.month} / ${L.today}`),
    ...s.kpis.map((k) => el("th", {}, L.kpis[k])));
  const team = el("tr", { class: "team", "data-user": "team" }, el("td", { class: "name" }, L.team),
    ...s.kpis.map((k) => kpiCell(s.team.kpis, k, s.currency)));
  const rows = shown.map((m) => el("tr", { "data-user": String(m.user_id) },
    el("td", { class: "name", title: m.department || "" }, m.name), ...s.kpis.map((k) => kpiCell(m.kpis, k, s.currency))));
  const table = el("table", {}, el("thead", {}, head), el("tbody", {}, team, ...rows));
  const pager = el("div", { class: "pager" }, pages > 1 ? L.page(page + 1, pages) : "");
  section.replaceChildren(table, pager);
  return section.scrollHeight <= section.clientHeight + 2;
}

function renderPlans(s) {
  // As many managers a page as fit on every page: rows grow with two-line names and figures.
  // Measured once per publication and screen size, then kept.
  const section = document.getElementById("plans");
  const key = `${s.version}|${window.innerWidth}x${window.innerHeight}`;
  if (!state.fit || state.fit.key !== key) {
    let size = rowsPerPage();
    const fitsEverywhere = (n) => {
      for (let page = 0; page * n < s.managers.length; page++) if (!drawPlans(s, section, n, page)) return false;
      return true;
    };
    while (size > 1 && !fitsEverywhere(size)) size -= 1;
    state.fit = { key, size };
  }
  const pageSize = state.fit.size;
  const pages = Math.max(1, Math.ceil(s.managers.length / pageSize));
  state.page = state.page % pages;
  drawPlans(s, section, pageSize, state.page);
}

function renderLeaders(s) {
  const top = s.managers.filter((m) => (m.kpis.won_amount.month.fact || 0) > 0).slice(0, 5);
  const list = el("ol", { class: "leaders" }, ...top.map((m) => el("li", { "data-user": String(m.user_id) },
    el("span", {}, m.name), el("span", {}, number(m.kpis.won_amount.month.fact, "won_amount", s.currency)))));
  document.getElementById("leaders").replaceChildren(el("h2", {}, L.leaders), top.length ? list : L.none);
}

function funnelPages(s) {
  // Pipelines that fit the panel at once, by their number of steps; the pages rotate with the managers'.
  const available = document.getElementById("funnel").clientHeight - window.innerHeight * 0.05;
  const perLine = window.innerHeight * 0.031;
  const pages = [[]];
  let used = 0;
  for (const p of s.funnel) {
    const height = (p.stages.length + 1.5) * perLine + p.stages.filter((st) => st.is_gap).length * perLine;
    if (pages[pages.length - 1].length && used + height > available) { pages.push([]); used = 0; }
    pages[pages.length - 1].push(p);
    used += height;
  }
  return pages;
}

function renderFunnel(s) {
  const pages = funnelPages(s);
  const shown = pages[state.page % pages.length];
  const blocks = shown.map((p) => {
    const first = p.stages.length ? p.stages[0].reached || 1 : 1;
    const stages = p.stages.map((st) => {
      const track = el("div", { class: "bar" });
      const fill = el("div", { class: "fill" });
      fill.style.width = `${Math.min(1, (st.reached || 0) / first) * 100}%`;
      track.append(fill);
      const conversion = st.conversion === null ? "" : `${Math.round(st.conversion * 100)}%`;
      const row = el("div", { class: "stage" + (st.is_gap ? " gap" : ""), "data-reached": String(st.reached) },
        el("span", {}, st.name), track, el("span", {}, `${st.reached} ${conversion ? "· " + conversion : ""}`));
      return st.is_gap && st.reasons ? [row, el("div", { class: "reasons" }, st.reasons)] : [row];
    }).flat();
    return el("div", { class: "pipeline", "data-pipeline": String(p.pipeline_id) }, el("h3", {}, p.name || ""), ...stages);
  });
  const pager = el("div", { class: "pager" }, pages.length > 1 ? L.page(state.page % pages.length + 1, pages.length) : "");
  document.getElementById("funnel").replaceChildren(el("h2", {}, L.funnel), ...blocks, pager);
}

function renderForgotten(s) {
  const cells = s.forgotten.filter((r) => r.forgotten > 0).slice(0, 8).flatMap((r) => [
    el("span", { "data-user": String(r.user_id) }, r.name),
    el("span", { class: "count", "data-forgotten": String(r.forgotten) }, `${r.forgotten} ${L.of} ${r.open}`)]);
  document.getElementById("forgotten").replaceChildren(el("h2", {}, L.forgotten),
    cells.length ? el("div", { class: "forgotten" }, ...cells) : L.none);
}

function renderHeader(s) {
  document.getElementById("title").textContent = L.title;
  document.title = L.title;
  const month = new Date(s.month + "T00:00:00");
  document.getElementById("period").textContent = new Intl.DateTimeFormat(language === "ru" ? "ru-RU" : "en-GB",
    { month: "long", year: "numeric" }).format(month) + " · " + new Intl.DateTimeFormat(
    language === "ru" ? "ru-RU" : "en-GB", { weekday: "long", day: "numeric" }).format(new Date(s.today + "T00:00:00"));
}

function renderFreshness() {
  if (!state.publishedAt) return;
  const now = Date.now() + state.serverOffset;
  const age = Math.max(0, (now - state.publishedAt) / 1000);
  const time = new Intl.DateTimeFormat(language === "ru" ? "ru-RU" : "en-GB",
    { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(state.publishedAt));
  document.getElementById("updated").textContent = `${L.updated} ${time}`;
  const banner = document.getElementById("stale");
  const limit = settings.stale_after_seconds || 300;
  banner.hidden = age <= limit;
  banner.textContent = L.stale(Math.round(age / 60));
}

function render() {
  const s = state.snapshot;
  if (!s || s.status !== "ok") {
    document.getElementById("plans").replaceChildren(el("div", { class: "notice", id: "waiting" }, L.waiting));
    return;
  }
  renderHeader(s);
  renderPlans(s);
  renderLeaders(s);
  renderFunnel(s);
  renderForgotten(s);
  renderFreshness();
  state.renders += 1;
  document.body.dataset.version = s.version;
}

async function poll() {
  const query = new URLSearchParams();
  for (const name of ["portal", "token"]) if (params.get(name)) query.set(name, params.get(name));
  const url = "api/snapshot" + (query.toString() ? `?${query}` : "");
  const connection = document.getElementById("connection");
  try {
    const response = await fetch(url, { cache: "no-store", headers: state.version ? { "If-None-Match": `"${state.version}"` } : {} });
    if (!response.ok) throw new Error(String(response.status));
    const body = await response.json();
    state.serverOffset = Date.parse(body.server_time) - Date.now();
    if (!body.unchanged && (body.status === "ok" || !state.snapshot)) {
      state.snapshot = body;
      state.version = body.version;
      state.publishedAt = body.published_at ? Date.parse(body.published_at) : null;
      render();
    }
    connection.textContent = "";
    connection.className = "";
  } catch (error) {          // keep showing the last good data
    connection.textContent = `· ${L.lost}`;
    connection.className = "lost";
  }
}

document.getElementById("waiting").textContent = L.waiting;
poll();
setInterval(poll, (settings.poll_seconds || 5) * 1000);
setInterval(renderFreshness, 1000);
setInterval(() => {
  if (state.snapshot && state.snapshot.status === "ok") { state.page += 1; renderPlans(state.snapshot); renderFunnel(state.snapshot); }
}, 12000);
window.addEventListener("resize", render);
window.wallRender = render;   // for the tests: redraw the current snapshot (a page of managers, say)
