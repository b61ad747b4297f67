// Browser test of the dashboard: playwright-core driving Debian's chromium against a real
// giamsat server. Run by tests/it/dashboard.rs:
//
//   node dashboard.mjs <base-url> <token> <out-dir> <from> <to> <mode> [commune] [outside-dossier]
//
// mode "admin": sign in, pick a custom period (typed dd/mm/yyyy), check the overview,
//   breakdown and Biểu 06 numbers on screen equal the API's, open the list of dossiers behind
//   a Biểu 06 cell (its count and, after paging, its rows equal the cell; the CSV too) and a
//   dossier from it (its class equals the list's), open the list behind a Decision 766
//   count, drill province → commune → agency → field → procedure (checking each level
//   against the API), download the XLSX; then again on a 390×844 phone in an English
//   browser: no horizontal scrolling of the page, dates shown dd/mm/yyyy.
// mode "commune": the same with a commune-scoped token: only that commune is ever shown,
//   and a dossier of another commune is "Không tìm thấy hồ sơ" (HTTP 404).
// Screenshots of every step go to <out-dir>; any console error fails the run (but the 404
// of the dossier that must not be found).
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const [base, token, out, from, to, mode, commune, outside] = process.argv.slice(2);
if (!base || !token || !out || !from || !to || !mode) {
  console.error("usage: dashboard.mjs URL TOKEN OUT FROM TO admin|commune [COMMUNE]");
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });

const nf = new Intl.NumberFormat("vi-VN");
const nf2 = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 2 });
const num = (v) => (v === null || v === undefined ? "—" : nf.format(v));
const pct = (v) => (v === null || v === undefined ? "—" : nf2.format(v * 100) + "%");
const vi = (d) => d.split("-").reverse().join("/");
const B06 = ["total", "received_online", "received_offline", "carried_over", "ended", "ended_early",
  "ended_on_day", "ended_late", "in_progress", "in_progress_in_time", "in_progress_overdue"];
// the words of each column in the list's title, and the classes its dossiers may have
const COLUMN = {
  total: ["Nhận giải quyết · Tổng số"], received_online: ["Nhận giải quyết · Trong kỳ · Trực tuyến"],
  received_offline: ["Nhận giải quyết · Trong kỳ · Trực tiếp, bưu chính"],
  carried_over: ["Nhận giải quyết · Từ kỳ trước chuyển sang"], ended: ["Đã giải quyết · Tổng số", ["early", "on_day", "late"]],
  ended_early: ["Đã giải quyết · Trước hạn", ["early"]], ended_on_day: ["Đã giải quyết · Đúng hạn", ["on_day"]],
  ended_late: ["Đã giải quyết · Quá hạn", ["late"]], in_progress: ["Đang giải quyết · Tổng số", ["in_time", "overdue"]],
  in_progress_in_time: ["Đang giải quyết · Trong hạn", ["in_time"]], in_progress_overdue: ["Đang giải quyết · Quá hạn", ["overdue"]],
};

async function api(p, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const r = await fetch(`${base}${p}?${q}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}
async function status(p, params) {
  const r = await fetch(`${base}${p}?${new URLSearchParams(params || {})}`, { headers: { Authorization: `Bearer ${token}` } });
  return [r.status, await r.text()];
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=vi-VN",
  ],
});
const errors = [];
// the one expected failed request: the dossier outside the token's commune
let allow404 = false;
const watch = (page) => {
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (allow404 && m.text().includes("status of 404") && (m.location().url || "").includes("/api/v1/dossiers/")) return;
    errors.push(`console: ${m.text()} ${m.location().url || ""}`);
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
};
const t0 = Date.now();
const log = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`);
let step = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true, locale: "vi-VN" });
  let page = await context.newPage();
  watch(page);
  const shot = async (name) => {
    step += 1;
    await page.screenshot({ path: path.join(out, `${String(step).padStart(2, "0")}-${name}.png`), fullPage: true });
  };
  const ready = async () => {
    await page.waitForFunction(() => document.body.dataset.ready === "1" || document.body.dataset.ready === "error", null, { timeout: 60000 });
    const state = await page.evaluate(() => document.body.dataset.ready);
    if (state !== "1") throw new Error(`dashboard error: ${await page.textContent("#status")}`);
  };
  const reload = async (action) => {
    await page.evaluate(() => { document.body.dataset.ready = ""; });
    await action();
    await ready();
  };

  // 1. sign in
  await page.goto(base + "/");
  await shot("dang-nhap");
  await page.fill("#token", token);
  await page.click("#signin-btn");
  await ready();
  const me = await api("/api/v1/me");
  check((await page.textContent("#who")) === me.label, "the signed-in label");

  // 2. pick a period
  await page.selectOption("#preset", "custom");
  check(await page.getAttribute("#from", "type") === "text", "the period is typed, not a locale date picker");
  await page.fill("#from", vi(from));
  await page.fill("#to", vi(to));
  await reload(() => page.click("#apply"));
  await shot("tong-quan");
  log("signed in, period picked");

  const path_ = [];
  const filters = () => {
    const f = { from, to };
    for (const p of path_) f[p.level] = p.code;
    return f;
  };
  const checkScreen = async (label) => {
    const f = filters();
    const o = await api("/api/v1/dashboard/overview", f);
    const c = o.current;
    const v = async (id) => (await page.textContent(`${id} .v`)).trim();
    check(await v("#kpi-received") === num(c.received_online + c.received_offline), `${label}: received`);
    check(await v("#kpi-ontime") === pct(c.rate), `${label}: on-time rate`);
    check(await v("#kpi-ended") === num(c.ended), `${label}: ended`);
    check(await v("#kpi-inprogress") === num(c.in_progress), `${label}: in progress`);
    check(await v("#kpi-overdue-now") === num(o.alerts.overdue), `${label}: overdue now`);
    check(await v("#kpi-766") === nf2.format(o.index766.total), `${label}: 766 total`);
    // Biểu 06 TOTAL row equals the report endpoint
    const rows = await api("/api/v1/reports/bieu06", { ...f, group_by: "field" });
    const total = rows[rows.length - 1];
    const cells = await page.$$eval("#bieu06 tbody tr.total td", (tds) => tds.map((t) => t.textContent.trim()));
    const keys = ["total", "received_online", "received_offline", "carried_over", "ended", "ended_early",
      "ended_on_day", "ended_late", "in_progress", "in_progress_in_time", "in_progress_overdue"];
    check(JSON.stringify(cells.slice(2)) === JSON.stringify(keys.map((k) => num(total[k]))), `${label}: Biểu 06 TOTAL ${cells}`);
    check((await page.$$("#bieu06 tbody tr")).length === rows.length, `${label}: Biểu 06 rows`);
    return o;
  };
  const checkBreakdown = async (level, label) => {
    const r = await api("/api/v1/indicators/on-time", { ...filters(), group_by: level });
    const shown = await page.$$eval("#breakdown tbody tr", (trs) => trs.map((t) => [t.dataset.code, [...t.querySelectorAll("td")].map((d) => d.textContent.trim())]));
    check(shown.length === r.rows.length, `${label}: ${shown.length} rows on screen, API ${r.rows.length}`);
    for (const row of r.rows) {
      const s = shown.find((x) => x[0] === row.group);
      check(s, `${label}: group ${row.group} on screen`);
      check(s[1][2] === num(row.total) && s[1][6] === pct(row.rate), `${label}: numbers of ${row.group}`);
    }
    return r.rows;
  };

  const view = (name) => page.waitForFunction((v) => document.body.dataset.view === v, name, { timeout: 30000 });
  const settled = (id) => page.waitForFunction((i) => ["ready", "notfound", "error"].includes(document.getElementById(i).dataset.state),
    id, { timeout: 60000 });
  const noSideScroll = async (label) => {
    const [sw, iw] = await page.evaluate(() => [document.scrollingElement.scrollWidth, window.innerWidth]);
    check(sw <= iw, `${label}: the page scrolls sideways (${sw} > ${iw})`);
  };
  const toDash = async () => {
    await page.evaluate(() => { location.hash = "#/"; });
    await view("dash");
  };
  const openList = async (selector) => {
    await page.click(selector);
    await view("list");
    await settled("list-view");
    check(await page.getAttribute("#list-view", "data-state") === "ready", `list: ${await page.textContent("#list-status")}`);
  };
  // the dossiers behind a Biểu 06 cell: the count and (after "Xem thêm") the rows equal the
  // cell, each row's class fits the column, the CSV holds them all; a dossier opened from the
  // list shows the list's class
  const explainCell = async (label, small) => {
    const f = filters();
    const rows = await api("/api/v1/reports/bieu06", { ...f, group_by: "field" });
    const cells = [];
    for (const r of rows) for (const k of B06) if (r[k] > 0) cells.push({ r, k, v: r[k] });
    const paged = cells.filter((c) => c.v > 100).sort((a, b) => a.v - b.v);
    const pick = small
      ? cells.filter((c) => c.r.group !== "TOTAL" && c.v > 1).sort((a, b) => a.v - b.v)[0]
      : paged[0] || cells.sort((a, b) => b.v - a.v)[0];
    check(pick, `${label}: a Biểu 06 cell with dossiers`);
    const { r, k, v } = pick;
    log(`${label}: Biểu 06 ${r.group} ${k} = ${v}`);
    await openList(`#bieu06 tbody tr[data-code="${r.group}"] td[data-col="${k}"] a`);
    const name = r.group === "TOTAL" ? "Tổng cộng" : r.group_name;
    const title = (await page.textContent("#list-title")).trim();
    check(title === `Biểu 06 · ${COLUMN[k][0]} · ${name} · ${vi(from)}–${vi(to)}`, `${label}: list title ${title}`);
    check((await page.textContent("#list-count")).trim() === num(v), `${label}: list count ${await page.textContent("#list-count")} for ${v}`);
    const q = new URLSearchParams({ ...f, group_by: "field", column: k, limit: "1" });
    if (r.group !== "TOTAL") q.set("group", r.group);
    const viaApi = await (await fetch(`${base}/api/v1/reports/bieu06/dossiers?${q}`, { headers: { Authorization: `Bearer ${token}` } })).json();
    check(viaApi.count === v, `${label}: the API's count ${viaApi.count} for the cell ${v}`);
    const shownRows = () => page.$$eval("#list-table tbody tr[data-id]", (trs) => trs.length);
    let pages = 1;
    while (await page.isVisible("#list-more")) {
      const before = await shownRows();
      await page.click("#list-more");
      await page.waitForFunction((n) => document.querySelectorAll("#list-table tbody tr[data-id]").length > n, before, { timeout: 60000 });
      pages += 1;
    }
    const shown = await page.$$eval("#list-table tbody tr[data-id]",
      (trs) => trs.map((t) => [t.dataset.id, t.dataset.class, t.querySelector("td.cls").textContent.trim()]));
    check(shown.length === v, `${label}: ${shown.length} rows listed in ${pages} pages, the cell says ${v}`);
    check(new Set(shown.map((x) => x[0])).size === v, `${label}: each dossier listed once`);
    if (COLUMN[k][1]) {
      const wrong = shown.filter((x) => !COLUMN[k][1].includes(x[1]));
      check(!wrong.length, `${label}: classes outside ${k}: ${JSON.stringify(wrong.slice(0, 3))}`);
    }
    if (small) await noSideScroll(`${label}: list`);
    await shot(`${label}-danh-sach`);
    const [csv] = await Promise.all([page.waitForEvent("download"), page.click("#list-csv")]);
    const csvFile = path.join(out, `${label}-ho-so.csv`);
    await csv.saveAs(csvFile);
    const lines = fs.readFileSync(csvFile, "utf8").replace(/^\uFEFF/, "").split(/\r?\n/).filter((l) => l.trim() !== "");
    check(lines.length === v + 1, `${label}: the CSV has ${lines.length - 1} dossiers for ${v}`);
    const [xlsx] = await Promise.all([page.waitForEvent("download"), page.click("#list-xlsx")]);
    const xlsxFile = path.join(out, `${label}-ho-so.xlsx`);
    await xlsx.saveAs(xlsxFile);
    check(fs.readFileSync(xlsxFile).subarray(0, 2).toString("latin1") === "PK", `${label}: the list as XLSX`);

    // a dossier of the list (the middle one): the class shown is the list's
    const [id, cls, clsLabel] = shown[Math.floor(shown.length / 2)];
    await page.click(`#list-table tbody tr[data-id="${id}"] a.dossier-link`);
    await view("dossier");
    await settled("dossier-view");
    check(await page.getAttribute("#dossier-view", "data-state") === "ready", `${label}: dossier ${id}: ${await page.textContent("#dossier-body")}`);
    const code = await page.getAttribute("#dossier-class", "data-code");
    const shownLabel = (await page.textContent("#dossier-class .badge")).trim();
    check(code === cls && shownLabel === clsLabel, `${label}: dossier ${id} class ${code} ${shownLabel}, the list says ${cls} ${clsLabel}`);
    const d = await api(`/api/v1/dossiers/${encodeURIComponent(id)}`, { as_of: to });
    check(d.class.code === cls, `${label}: the API's class of ${id}: ${d.class.code}`);
    const evRows = await page.$$eval("#events tbody tr", (trs) => trs.length);
    check(evRows === d.events.length, `${label}: ${evRows} events shown of ${d.events.length}`);
    if (small) await noSideScroll(`${label}: dossier`);
    await shot(`${label}-ho-so`);
    // back: the list as it was left
    await page.click("#dossier-back");
    await view("list");
    check(await shownRows() === v, `${label}: the list kept after going back`);
    await toDash();
  };
  // the dossiers behind an overview number and a Decision 766 count
  const explainOther = async () => {
    const o = await api("/api/v1/dashboard/overview", filters());
    await openList("#kpi-ended .v a.count");
    check((await page.textContent("#list-count")).trim() === num(o.current.ended), "overview: the list of ended dossiers");
    await toDash();
    const counts = await page.$$eval("#i766 tbody tr[data-key] td[data-count]",
      (tds) => tds.filter((td) => td.querySelector("a")).map((td) => [td.closest("tr").dataset.key, td.dataset.count, td.textContent.trim()]));
    check(counts.length > 0, "Decision 766 counts with lists");
    const c = counts.find((x) => x[1] === "dossiers_on_time") || counts.find((x) => x[2] !== "0") || counts[0];
    await openList(`#i766 tbody tr[data-key="${c[0]}"] td[data-count="${c[1]}"] a`);
    check((await page.textContent("#list-count")).trim() === c[2], `766 ${c[0]} ${c[1]}: list count ${await page.textContent("#list-count")} for ${c[2]}`);
    check((await page.textContent("#list-title")).startsWith(`Chỉ số 766 · ${c[0]} `), "766 list title");
    await shot("chi-so-766-danh-sach");
    await toDash();
  };

  await checkScreen("toàn phạm vi");
  await explainCell(mode === "admin" ? "bieu06" : "xa-bieu06");
  if (mode === "admin") await explainOther();
  log("lists and dossiers checked");
  if (mode === "commune") {
    // a dossier of another commune: not found, exactly as an unknown one
    check(outside, "a dossier outside the commune to try");
    const [st, body] = await status(`/api/v1/dossiers/${encodeURIComponent(outside)}`);
    check(st === 404, `HTTP ${st} for a dossier outside the commune: ${body}`);
    allow404 = true;
    await page.evaluate((id) => { location.hash = "#/ho-so/" + encodeURIComponent(id); }, outside);
    await view("dossier");
    await settled("dossier-view");
    const shownText = (await page.textContent("#dossier-body")).trim();
    check(shownText === "Không tìm thấy hồ sơ", `outside dossier page: ${shownText}`);
    await page.waitForTimeout(300);
    allow404 = false;
    await shot("ho-so-ngoai-xa");
    await toDash();
  }
  if (mode === "admin") {
    // 3. drill: province → commune → agency → field → procedure
    let rows = await checkBreakdown("province", "tỉnh");
    const drill = async (level, code, next, name) => {
      await reload(() => page.click(`#breakdown tbody tr[data-code="${code}"] a.drill`));
      path_.push({ level, code });
      await shot(name);
      await checkScreen(name);
      return next ? checkBreakdown(next, name) : null;
    };
    const prov = rows.find((r) => r.group !== "TOTAL");
    rows = await drill("province", prov.group, "commune", "tinh");
    check(rows.some((r) => r.group === commune), `commune ${commune} listed under its province`);
    rows = await drill("commune", commune, "agency", "xa");
    const agency = rows.find((r) => r.group !== "TOTAL" && r.group !== "");
    rows = await drill("agency", agency.group, "field", "co-quan");
    const field = rows.filter((r) => r.group !== "TOTAL" && r.group !== "").sort((a, b) => b.total - a.total)[0];
    rows = await drill("field", field.group, "procedure", "linh-vuc");
    const proc = rows.filter((r) => r.group !== "TOTAL" && r.group !== "").sort((a, b) => b.total - a.total)[0];
    await drill("procedure", proc.group, "procedure", "thu-tuc");
    const crumbs = await page.textContent("#crumbs");
    check(crumbs.includes(proc.group_name), "the procedure is in the breadcrumb");
    // back to the whole scope for the download
    await reload(() => page.click("#crumbs a"));
    path_.length = 0;
  } else {
    // commune-scoped: the breakdown starts at communes and shows only the token's
    const rows = await checkBreakdown("commune", "xã");
    const codes = rows.filter((r) => r.group !== "TOTAL").map((r) => r.group);
    check(JSON.stringify(codes) === JSON.stringify([commune]), `only ${commune}: ${codes}`);
    await page.selectOption("#b06-group", "commune");
    await page.waitForFunction((c) => {
      const trs = [...document.querySelectorAll("#bieu06 tbody tr")];
      return trs.length === 2 && trs[0].dataset.code === c;
    }, commune, { timeout: 30000 });
    const alerts = await page.$$eval("#alerts tbody tr td:nth-child(4)", (tds) => tds.map((t) => t.textContent.trim()));
    check(alerts.every((c) => c === commune || c === ""), `alerts only in ${commune}: ${alerts}`);
    await shot("xa-bieu06");
    await page.selectOption("#b06-group", "field");
    await page.waitForTimeout(500);
  }

  log("drill-down checked");
  // 4. download the XLSX of Biểu 06 for the period
  await page.selectOption("#b06-group", "field");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#dl-xlsx")]);
  const file = path.join(out, "bieu06.xlsx");
  await download.saveAs(file);
  const head = fs.readFileSync(file).subarray(0, 2).toString("latin1");
  check(head === "PK", "the download is an XLSX (zip)");
  // and the official form as PDF, for signing
  const [pdfDl] = await Promise.all([page.waitForEvent("download"), page.click("#dl-pdf")]);
  const pdfFile = path.join(out, "bieu06.pdf");
  await pdfDl.saveAs(pdfFile);
  check(fs.readFileSync(pdfFile).subarray(0, 5).toString("latin1") === "%PDF-", "the form download is a PDF");
  await shot("bieu06");

  // 5. exported reports: the list equals the API's; an admin downloads the file as written
  const ex = await api("/api/v1/exports", { limit: 20 });
  const exRows = await page.$$eval("#exports tbody tr[data-run]", (trs) => trs.map((t) => t.dataset.run));
  check(JSON.stringify(exRows) === JSON.stringify(ex.runs.map((r) => r.run_id)), `exports on screen ${exRows}`);
  if (mode === "admin") {
    check(ex.runs.length > 0 && ex.runs[0].status === "ok", "an export run to show");
    const cells = await page.$$eval("#exports tbody tr[data-run] td", (tds) => tds.map((t) => t.textContent.trim()));
    check(cells[4] === "Thành công", `export status ${cells[4]}`);
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#exports a.export-file")]);
    const xf = path.join(out, "export.xlsx");
    await dl.saveAs(xf);
    const { createHash } = await import("node:crypto");
    const sha = createHash("sha256").update(fs.readFileSync(xf)).digest("hex");
    check(sha === ex.runs[0].sha256, "the downloaded export has the recorded SHA-256");
  } else {
    check(ex.runs.length === 0, "a commune viewer sees no province-wide export");
  }
  await shot("bao-cao-dinh-ky");

  // large wall screen
  await page.setViewportSize({ width: 2560, height: 1440 });
  await page.waitForTimeout(300);
  await shot("man-hinh-lon");

  // 6. a phone in an English browser: dates still dd/mm/yyyy, nothing scrolls sideways
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true, locale: "en-US" });
  page = await phone.newPage();
  watch(page);
  await page.goto(base + "/");
  await page.fill("#token", token);
  await page.click("#signin-btn");
  await ready();
  check(await page.evaluate(() => navigator.language) === "en-US", "an English browser");
  const now = new Date();
  const dd = (d) => `${String(d.getDate()).padStart(2, "0")}/${String(d.getMonth() + 1).padStart(2, "0")}/${d.getFullYear()}`;
  const shownFrom = await page.inputValue("#from");
  check(shownFrom === dd(new Date(now.getFullYear(), now.getMonth(), 1)), `this month starts ${shownFrom}`);
  check(await page.inputValue("#to") === dd(now), `today is ${await page.inputValue("#to")}`);
  for (const id of ["#from", "#to"]) {
    check(await page.getAttribute(id, "placeholder") === "dd/mm/yyyy" && await page.getAttribute(id, "inputmode") === "numeric", `${id}: dd/mm/yyyy, numeric`);
  }
  await noSideScroll("phone: this month");
  // a date that does not exist is refused, in words
  await page.fill("#from", "31/02/2026");
  await page.click("#apply");
  await page.waitForFunction(() => document.querySelector("#from").getAttribute("aria-invalid") === "true", null, { timeout: 10000 });
  check((await page.getAttribute("#status", "class")) === "error", "an impossible date is an error");
  await page.selectOption("#preset", "custom");
  await page.fill("#from", vi(from));
  await page.fill("#to", vi(to));
  await reload(() => page.click("#apply"));
  check(await page.inputValue("#from") === vi(from), "the typed period stays dd/mm/yyyy");
  const h1 = await page.evaluate(() => {
    const h = document.querySelector("header h1");
    return [h.getBoundingClientRect().height, parseFloat(getComputedStyle(h).fontSize)];
  });
  check(h1[0] < h1[1] * 2, `the title on one line (${h1[0]} px high)`);
  await noSideScroll("phone: dashboard");
  await shot("dien-thoai");
  await checkScreen("điện thoại");
  await explainCell("dien-thoai", true);
  await noSideScroll("phone: back on the dashboard");
} catch (e) {
  errors.push(e.stack || String(e));
} finally {
  await browser.close();
}
if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
console.log(`ok: ${step} screenshots in ${out}`);
