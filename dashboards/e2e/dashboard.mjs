// Browser test of the dashboard: playwright-core driving Debian's chromium against a real
// giamsat server. Run by tests/it/dashboard.rs:
//
//   node dashboard.mjs <base-url> <token> <out-dir> <from> <to> <mode> [commune]
//
// mode "admin": sign in, pick a custom period, check the overview, breakdown and Biểu 06
//   numbers on screen equal the API's, drill province → commune → agency → field →
//   procedure (checking each level against the API), download the XLSX.
// mode "commune": the same with a commune-scoped token: only that commune is ever shown.
// Screenshots of every step go to <out-dir>; any console error fails the run.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const [base, token, out, from, to, mode, commune] = process.argv.slice(2);
if (!base || !token || !out || !from || !to || !mode) {
  console.error("usage: dashboard.mjs URL TOKEN OUT FROM TO admin|commune [COMMUNE]");
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });

const nf = new Intl.NumberFormat("vi-VN");
const nf2 = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 2 });
const num = (v) => (v === null || v === undefined ? "—" : nf.format(v));
const pct = (v) => (v === null || v === undefined ? "—" : nf2.format(v * 100) + "%");

async function api(p, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const r = await fetch(`${base}${p}?${q}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
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
const t0 = Date.now();
const log = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`);
let step = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true, locale: "vi-VN" });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
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
  await page.fill("#from", from);
  await page.fill("#to", to);
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

  await checkScreen("toàn phạm vi");
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
