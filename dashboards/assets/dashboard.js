// giamsat leadership dashboard. Plain JavaScript, no build step; charts from the vendored
// ECharts (/assets/echarts.min.js). Every number comes from the HTTP API with the user's
// token, so the token's territorial scope applies to everything shown.
(function () {
  "use strict";

  var nf = new Intl.NumberFormat("vi-VN");
  var nf2 = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 2 });
  var LEVELS = [
    { key: "province", name: "Tỉnh, thành phố" },
    { key: "commune", name: "Xã, phường" },
    { key: "agency", name: "Cơ quan" },
    { key: "field", name: "Lĩnh vực" },
    { key: "procedure", name: "Thủ tục" }
  ];
  // `gen` counts refreshes: an answer to an older refresh is dropped, so a slow reply
  // for the previous period never overwrites the numbers of the current one.
  var S = { token: null, me: null, path: [], start: 0, sort: { key: "total", dir: -1 }, rows: [], gen: 0,
    view: "dash", dashScroll: 0, list: null, listGen: 0, dossierGen: 0 };
  var STALE = { stale: true };
  var charts = {};

  function $(id) { return document.getElementById(id); }
  function num(v) { return v === null || v === undefined ? "—" : nf.format(v); }
  function pct(v) { return v === null || v === undefined ? "—" : nf2.format(v * 100) + "%"; }
  function pts(v) { return v === null || v === undefined ? "—" : nf2.format(v); }
  function dateVi(iso) {
    if (!iso) { return "—"; }
    var d = iso.slice(0, 10).split("-");
    var t = iso.length > 10 ? " " + iso.slice(11, 16) : "";
    return d[2] + "/" + d[1] + "/" + d[0] + t;
  }
  // an instant (RFC 3339, any offset) as dd/mm/yyyy hh:mm in Vietnam's time
  var vnParts = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Ho_Chi_Minh", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function instantVi(s) {
    if (!s) { return "—"; }
    if (/\+07:00$/.test(s) || s.length <= 10) { return dateVi(s); }
    var d = new Date(s);
    if (isNaN(d.getTime())) { return s; }
    var p = {};
    vnParts.formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
    return p.day + "/" + p.month + "/" + p.year + " " + p.hour + ":" + p.minute;
  }
  function iso(d) {
    var m = String(d.getMonth() + 1).padStart(2, "0");
    var day = String(d.getDate()).padStart(2, "0");
    return d.getFullYear() + "-" + m + "-" + day;
  }
  function duration(sec) {
    var h = sec / 3600;
    if (h < 1) { return nf.format(Math.round(sec / 60)) + " phút"; }
    if (h < 48) { return nf2.format(Math.round(h * 10) / 10) + " giờ"; }
    return nf.format(Math.round(h / 24)) + " ngày";
  }
  // ---- dates typed as dd/mm/yyyy whatever the browser's locale; the API gets YYYY-MM-DD ----
  function viDate(isoDate) {
    var d = String(isoDate).slice(0, 10).split("-");
    return d[2] + "/" + d[1] + "/" + d[0];
  }
  function parseViDate(s) {
    s = String(s || "").trim();
    var m, y, mo, d;
    if ((m = /^(\d{1,2})[\/.\-](\d{1,2})[\/.\-](\d{4})$/.exec(s))) { d = +m[1]; mo = +m[2]; y = +m[3]; }
    else if ((m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(s))) { y = +m[1]; mo = +m[2]; d = +m[3]; }
    else if ((m = /^(\d{2})(\d{2})(\d{4})$/.exec(s))) { d = +m[1]; mo = +m[2]; y = +m[3]; }
    else { return null; }
    if (y < 1900 || y > 2999) { return null; }
    var dt = new Date(y, mo - 1, d);
    if (dt.getFullYear() !== y || dt.getMonth() !== mo - 1 || dt.getDate() !== d) { return null; }
    return iso(dt);
  }
  function dateField(id) { return parseViDate($(id).value); }
  function setDateField(id, isoDate) { $(id).value = viDate(isoDate); $(id).removeAttribute("aria-invalid"); }
  // a working duration: "X ngày Y giờ Z phút", a day being `hpd` working hours
  function workDur(sec, hpd) {
    if (sec === null || sec === undefined) { return "—"; }
    var mins = Math.floor(sec / 60), dayMins = (hpd || 8) * 60;
    var d = Math.floor(mins / dayMins);
    mins -= d * dayMins;
    var h = Math.floor(mins / 60), m = Math.floor(mins - h * 60), out = [];
    if (d) { out.push(nf.format(d) + " ngày"); }
    if (h) { out.push(nf.format(h) + " giờ"); }
    if (m) { out.push(nf.format(m) + " phút"); }
    return out.length ? out.join(" ") : "0 phút";
  }
  function saveBlob(blob, name) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  // a link to the list of dossiers behind a number (hash route #/danh-sach?…); `group`
  // is kept even when empty (the "Không xác định" row); keys t_* only label the page
  function listHref(p) {
    var q = new URLSearchParams();
    Object.keys(p).forEach(function (k) {
      var v = p[k];
      if (v === null || v === undefined || (v === "" && k !== "group")) { return; }
      q.set(k, v);
    });
    return "#/danh-sach?" + q.toString();
  }
  function countA(value, params, title) {
    var a = document.createElement("a");
    a.className = "count";
    a.href = listHref(params);
    a.textContent = num(value);
    a.title = title || "Xem danh sách hồ sơ";
    return a;
  }
  function dossierHref(id, asOf) {
    return "#/ho-so/" + encodeURIComponent(id) + (asOf ? "?as_of=" + encodeURIComponent(asOf) : "");
  }
  function dossierA(id, asOf) {
    var a = document.createElement("a");
    a.className = "dossier-link";
    a.href = dossierHref(id, asOf);
    a.textContent = id;
    return a;
  }
  function text(el, s) { el.textContent = s; return el; }
  // a link that acts in the page (no address): reachable and usable from the keyboard too
  function action(a, fn) {
    a.tabIndex = 0;
    a.setAttribute("role", "button");
    a.onclick = fn;
    a.onkeydown = function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fn(); } };
    return a;
  }
  function cell(tr, s, cls) {
    var td = document.createElement("td");
    td.textContent = s;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }
  function status(msg, isError) {
    var el = $("status");
    el.textContent = msg || "";
    el.className = isError ? "error" : "";
  }

  function api(path, params, anyGen) {
    var gen = S.gen;
    var q = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v !== null && v !== undefined && (v !== "" || k === "group")) { q.set(k, v); }
    });
    var url = path + (q.toString() ? "?" + q.toString() : "");
    // 503 = the server's query memory is momentarily full: try again, up to 3 times
    function get(tries) {
      return fetch(url, { headers: { Authorization: "Bearer " + S.token } }).then(function (r) {
        if (r.status === 503 && tries > 0) {
          return new Promise(function (res) { setTimeout(res, 400 * (4 - tries)); })
            .then(function () { return get(tries - 1); });
        }
        return r;
      });
    }
    return get(3).then(function (r) {
      if (r.ok) {
        var ct = r.headers.get("content-type") || "";
        return ct.indexOf("json") >= 0 ? r.json() : r.blob();
      }
      function fail(msg) { var e = new Error(msg); e.status = r.status; throw e; }
      return r.json().then(function (b) { fail(b.error || ("HTTP " + r.status)); },
        function () { fail("HTTP " + r.status); });
    }).then(function (x) {
      if (!anyGen && gen !== S.gen) { throw STALE; }
      return x;
    }, function (e) {
      throw (!anyGen && gen !== S.gen) ? STALE : e;
    });
  }

  // ---- period presets (local dates) ----
  function preset(name, today) {
    var y = today.getFullYear(), m = today.getMonth();
    switch (name) {
      case "last_month":
        return [new Date(y, m - 1, 1), new Date(y, m, 0)];
      case "official_quarter": {
        // official quarter: 15th of the month before the quarter to the 14th of its last month
        var shifted = today.getDate() >= 15 ? m + 1 : m; // 0-based month, may be 12
        var qy = y + Math.floor(shifted / 12);
        var q = Math.floor((shifted % 12) / 3);
        var from = new Date(qy, q * 3 - 1, 15);
        var to = new Date(qy, q * 3 + 2, 14);
        return [from, to > today ? today : to];
      }
      case "ytd":
        return [new Date(y, 0, 1), today];
      default:
        return [new Date(y, m, 1), today];
    }
  }
  function applyPreset() {
    var p = $("preset").value;
    if (p === "custom") { return; }
    var r = preset(p, new Date());
    setDateField("from", iso(r[0]));
    setDateField("to", iso(r[1]));
  }

  // ---- filters: period, level, phi địa giới, and the drill-down path ----
  function filters(withPath) {
    var f = {
      from: dateField("from"),
      to: dateField("to"),
      procedure_level: $("level").value,
      non_territorial: $("nonterr").value
    };
    if (withPath !== false) {
      S.path.forEach(function (p) { f[p.level] = p.code; });
    }
    return f;
  }
  function pick(f, keys) {
    var o = {};
    keys.forEach(function (k) { if (f[k] !== undefined) { o[k] = f[k]; } });
    return o;
  }

  // the filters in words, for the title of a list of dossiers
  function scopeText() {
    var parts = [];
    if (S.path.length) { parts.push(S.path.map(function (p) { return p.name || p.code; }).join(" › ")); }
    [["level", "Mức độ"], ["nonterr", "Phi địa giới"]].forEach(function (x) {
      var sel = $(x[0]);
      if (sel.value) { parts.push(x[1] + ": " + sel.options[sel.selectedIndex].text); }
    });
    return parts.join(" · ");
  }
  // the parameters of the list behind a Biểu 06 / on-time cell (same period, grouping,
  // filters as the report on screen; no `group` = the TOTAL row)
  function b06List(ctx, groupBy, row, column) {
    var p = { src: "bieu06", t_ctx: ctx };
    var f = filters();
    Object.keys(f).forEach(function (k) { p[k] = f[k]; });
    p.group_by = groupBy;
    if (row && row.group !== "TOTAL") {
      p.group = row.group;
      p.t_name = row.group_name || (row.group === "" ? "Không xác định" : row.group);
    } else {
      p.t_name = "Tổng cộng";
    }
    p.column = column;
    p.t_scope = scopeText();
    return p;
  }

  // ---- overview ----
  function delta(now, before, asPct, unit) {
    if (before === null || before === undefined || now === null || now === undefined) { return null; }
    var d = now - before;
    var s = asPct ? nf2.format(d * 100) + " điểm %" : nf2.format(d);
    var frag = document.createDocumentFragment();
    var sp = document.createElement("span");
    sp.className = d > 0 ? "up" : (d < 0 ? "down" : "");
    sp.textContent = (d > 0 ? "+" : "") + s;
    frag.appendChild(sp);
    frag.appendChild(document.createTextNode((unit || "") + " so với kỳ trước"));
    return frag;
  }
  function span(cls, parts) {
    var sp = document.createElement("span");
    sp.className = cls;
    parts.forEach(function (p) { sp.appendChild(typeof p === "string" ? document.createTextNode(p) : p); });
    return sp;
  }
  // a KPI: its value (text or a link) and its line of parts ("\n" = line break)
  function kpi(id, value, parts) {
    var el = $(id);
    var v = el.querySelector(".v");
    v.textContent = "";
    v.appendChild(typeof value === "string" ? document.createTextNode(value) : value);
    var s = el.querySelector(".s");
    s.textContent = "";
    parts.forEach(function (p) {
      if (p === null || p === undefined || p === "") { return; }
      if (p === "\n") { s.appendChild(document.createElement("br")); }
      else { s.appendChild(typeof p === "string" ? document.createTextNode(p) : p); }
    });
  }
  function loadOverview() {
    var f = filters();
    return api("/api/v1/dashboard/overview", f).then(function (o) {
      var c = o.current, b = o.before;
      text($("period-label"), "(" + dateVi(o.period.from) + " – " + dateVi(o.period.to) + ")");
      var L = function (col) { return countA(c[col], b06List("Tổng quan", "field", null, col)); };
      var A = function (st) {
        var p = { src: "alerts", status: st, province: f.province, commune: f.commune, t_scope: scopeText() };
        return countA(o.alerts[st], p, "Xem danh sách hồ sơ (hiện tại)");
      };
      // "received" is the sum of two Biểu 06 columns: it and each part are links
      kpi("kpi-received", countA(c.received_online + c.received_offline,
        b06List("Tổng quan", "field", null, "received")),
        ["Trực tuyến ", L("received_online"), " · Trực tiếp, bưu chính ", L("received_offline"), "\n",
          delta(c.received_online + c.received_offline, b ? b.received_online + b.received_offline : null)]);
      kpi("kpi-ontime", pct(c.rate), ["Đúng hạn ", L("on_time"), " / ", L("total"), " hồ sơ", "\n",
        delta(c.rate, b ? b.rate : null, true)]);
      kpi("kpi-ended", L("ended"), ["Trước hạn ", L("ended_early"), " · Đúng hạn ", L("ended_on_day"),
        " · ", span("late", ["Quá hạn ", L("ended_late")])]);
      kpi("kpi-inprogress", L("in_progress"), ["Trong hạn ", L("in_progress_in_time"),
        " · ", span("late", ["Quá hạn ", L("in_progress_overdue")])]);
      kpi("kpi-overdue-now", A("overdue"), ["Sắp đến hạn ", A("due_soon"),
        " · ", span("stale", ["Chưa đồng bộ ", A("stale")])]);
      kpi("kpi-766", pts(o.index766.total), [delta(o.index766.total, o.index766_previous, false, " điểm")]);
      render766(o.index766, f);
      charts.i766.setOption({
        tooltip: { trigger: "axis", valueFormatter: function (v) { return pts(v); } },
        legend: { data: ["Điểm đạt", "Điểm tối đa"] },
        grid: { left: 8, right: 16, bottom: 8, top: 36, containLabel: true },
        xAxis: { type: "value", axisLabel: { formatter: function (v) { return nf.format(v); } } },
        yAxis: { type: "category", inverse: true, data: o.index766.groups.map(function (g) { return g.group + ". " + g.name; }) },
        series: [
          { name: "Điểm tối đa", type: "bar", data: o.index766.groups.map(function (g) { return g.max; }), itemStyle: { color: "#d6dde4" }, barGap: "-100%", z: 1 },
          { name: "Điểm đạt", type: "bar", data: o.index766.groups.map(function (g) { return g.points; }), itemStyle: { color: "#8c1d18" }, z: 2,
            label: { show: true, position: "right", formatter: function (p) { return pts(p.value); } } }
        ]
      }, true);
    });
  }

  // ---- Decision 766: every criterion, its numerator and denominator ----
  // the per-dossier counts (a list of dossiers exists for these only)
  var COUNT766 = {
    dossiers: "hồ sơ đã và đang giải quyết (Biểu 06 cột 1)",
    dossiers_on_time: "hồ sơ trước hạn, đúng hạn, đang trong hạn",
    dossiers_late: "hồ sơ quá hạn (đã và đang giải quyết)",
    dossiers_with_feedback: "hồ sơ có phản ánh, kiến nghị",
    dossiers_synced: "hồ sơ có trên Cổng DVCQG",
    received: "hồ sơ tiếp nhận mới trong kỳ",
    received_online_capable: "hồ sơ mới của TTHC trực tuyến",
    received_online_capable_online: "hồ sơ mới của TTHC trực tuyến, nộp trực tuyến",
    received_with_fee: "hồ sơ mới của TTHC có phí",
    received_with_fee_paid_online: "hồ sơ mới có phí, thanh toán trực tuyến",
    received_digitized: "hồ sơ mới được số hóa",
    received_data_reused: "hồ sơ mới tái sử dụng dữ liệu",
    received_vneid: "hồ sơ mới kết nối VNeID",
    ended: "hồ sơ đã giải quyết trong kỳ",
    ended_result_digitized: "hồ sơ đã giải quyết có kết quả điện tử",
    ended_certified: "hồ sơ chứng thực đã giải quyết",
    ended_certified_digitized: "hồ sơ chứng thực có bản sao điện tử"
  };
  function render766(ix, f) {
    var body = $("i766").querySelector("tbody");
    body.innerHTML = "";
    var period = f.from + ".." + f.to;
    function countCell(tr, value, name, role, c) {
      var td = cell(tr, "", "num");
      td.dataset.count = name;
      if (COUNT766[name]) {
        td.appendChild(countA(value, {
          src: "766", count: name, period: period, province: f.province, commune: f.commune, agency: f.agency,
          t_name: c.key + " " + c.name, t_count: role + ": " + COUNT766[name], t_scope: scopeText()
        }, role + ": " + COUNT766[name]));
      } else {
        td.textContent = num(value);
        td.title = role + ": số đếm không theo hồ sơ (" + name + ")";
      }
    }
    ix.groups.forEach(function (g) {
      var gr = document.createElement("tr");
      gr.className = "g766";
      var gt = cell(gr, g.group + ". " + g.name);
      gt.colSpan = 5;
      cell(gr, pts(g.points) + " / " + pts(g.max), "num nowrap");
      body.appendChild(gr);
      g.criteria.forEach(function (c) {
        var tr = document.createElement("tr");
        tr.dataset.key = c.key;
        cell(tr, c.key + " " + c.name);
        countCell(tr, c.numerator, c.numerator_name, "Tử số", c);
        countCell(tr, c.denominator, c.denominator_name, "Mẫu số", c);
        cell(tr, pct(c.rate), "num");
        cell(tr, pct(c.target), "num");
        cell(tr, pts(c.points) + " / " + pts(c.max), "num nowrap");
        body.appendChild(tr);
      });
    });
    var tr = document.createElement("tr");
    tr.className = "total";
    var t = cell(tr, "Tổng cộng");
    t.colSpan = 5;
    cell(tr, pts(ix.total) + " / 100", "num nowrap");
    body.appendChild(tr);
  }

  // ---- trend ----
  function loadTrend() {
    var f = filters();
    f.series = "month";
    f.group_by = "field";
    return api("/api/v1/indicators/on-time", f).then(function (r) {
      var s = r.series;
      charts.trend.setOption({
        tooltip: { trigger: "axis", valueFormatter: function (v) { return num(v); } },
        legend: { data: ["Hồ sơ tiếp nhận mới", "Tỷ lệ đúng hạn"] },
        grid: { left: 8, right: 8, bottom: 8, top: 36, containLabel: true },
        xAxis: { type: "category", data: s.map(function (x) { var p = x.period.split("-"); return p[1] + "/" + p[0]; }) },
        yAxis: [
          { type: "value", axisLabel: { formatter: function (v) { return nf.format(v); } } },
          { type: "value", min: 0, max: 100, axisLabel: { formatter: function (v) { return nf.format(v) + "%"; } } }
        ],
        series: [
          { name: "Hồ sơ tiếp nhận mới", type: "bar", data: s.map(function (x) { return x.received_online + x.received_offline; }), itemStyle: { color: "#5b8db8" } },
          { name: "Tỷ lệ đúng hạn", type: "line", yAxisIndex: 1, data: s.map(function (x) { return x.rate === null ? null : Math.round(x.rate * 10000) / 100; }),
            itemStyle: { color: "#8c1d18" }, tooltip: { valueFormatter: function (v) { return v === null ? "—" : nf2.format(v) + "%"; } } }
        ]
      }, true);
    });
  }

  // ---- drill-down ----
  function level() { return LEVELS[Math.min(S.start + S.path.length, LEVELS.length - 1)]; }
  function renderCrumbs() {
    var el = $("crumbs");
    el.innerHTML = "";
    var root = document.createElement("a");
    root.textContent = "Toàn bộ phạm vi";
    action(root, function () { S.path = []; refresh(); });
    el.appendChild(root);
    S.path.forEach(function (p, i) {
      el.appendChild(document.createTextNode(" › "));
      var a = document.createElement("a");
      a.textContent = p.name || p.code;
      action(a, function () { S.path = S.path.slice(0, i + 1); refresh(); });
      el.appendChild(a);
    });
    el.appendChild(document.createTextNode(" › " + level().name));
  }
  var COLS = [
    { key: "group", name: "Mã" }, { key: "group_name", name: "Tên" }, { key: "total", name: "Tổng số", n: 1 },
    { key: "ended", name: "Đã giải quyết", n: 1 }, { key: "late", name: "Quá hạn", n: 1 },
    { key: "in_progress", name: "Đang giải quyết", n: 1 }, { key: "rate", name: "Tỷ lệ đúng hạn", n: 2 }
  ];
  function renderBreakdown() {
    var t = $("breakdown");
    var head = t.querySelector("thead");
    head.innerHTML = "";
    var hr = document.createElement("tr");
    COLS.forEach(function (c) {
      var th = document.createElement("th");
      th.className = "sortable";
      th.textContent = c.name + (S.sort.key === c.key ? (S.sort.dir > 0 ? " ▲" : " ▼") : "");
      th.onclick = function () {
        S.sort = { key: c.key, dir: S.sort.key === c.key ? -S.sort.dir : (c.n ? -1 : 1) };
        renderBreakdown();
      };
      hr.appendChild(th);
    });
    head.appendChild(hr);
    var rows = S.rows.filter(function (r) { return r.group !== "TOTAL"; });
    var total = S.rows.filter(function (r) { return r.group === "TOTAL"; });
    rows.sort(function (a, b) {
      var x = a[S.sort.key], y = b[S.sort.key];
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * S.sort.dir;
    });
    var body = t.querySelector("tbody");
    body.innerHTML = "";
    var lv = level();
    var last = S.path[S.path.length - 1];
    var canDrill = !(last && last.level === "procedure");
    rows.concat(total).forEach(function (r) {
      var tr = document.createElement("tr");
      tr.dataset.code = r.group;
      if (r.group === "TOTAL") { tr.className = "total"; }
      var c0 = cell(tr, r.group === "TOTAL" ? "" : r.group);
      var c1 = cell(tr, r.group === "TOTAL" ? "Tổng cộng" : r.group_name);
      if (canDrill && r.group !== "TOTAL" && r.group !== "") {
        c1.textContent = "";
        var a = document.createElement("a");
        a.className = "drill";
        a.textContent = r.group_name;
        action(a, function () { S.path.push({ level: lv.key, code: r.group, name: r.group_name }); refresh(); });
        c1.appendChild(a);
      }
      void c0;
      ["total", "ended", "late", "in_progress"].forEach(function (k) {
        var td = cell(tr, "", k === "late" && r.late > 0 ? "num late" : "num");
        td.appendChild(countA(r[k], b06List("Phân tích theo " + lv.name.toLowerCase(), lv.key, r, k)));
      });
      cell(tr, pct(r.rate), "num");
      body.appendChild(tr);
    });
    var top = rows.slice(0, 25);
    charts.breakdown.off("click");
    if (canDrill) {
      // a bar drills down like its row
      charts.breakdown.on("click", function (p) {
        var r = top[p.dataIndex];
        if (r && r.group !== "") { S.path.push({ level: lv.key, code: r.group, name: r.group_name }); refresh(); }
      });
    }
    charts.breakdown.setOption({
      tooltip: { trigger: "axis", valueFormatter: function (v) { return num(v); } },
      legend: { data: ["Đúng hạn", "Quá hạn"] },
      grid: { left: 8, right: 16, bottom: 8, top: 36, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: function (v) { return nf.format(v); } } },
      yAxis: { type: "category", inverse: true, data: top.map(function (r) { return r.group_name; }),
        axisLabel: { width: 180, overflow: "truncate" } },
      series: [
        { name: "Đúng hạn", type: "bar", stack: "t", data: top.map(function (r) { return r.on_time; }), itemStyle: { color: "#1f7a3a" } },
        { name: "Quá hạn", type: "bar", stack: "t", data: top.map(function (r) { return r.late; }), itemStyle: { color: "#b3261e" } }
      ]
    }, true);
  }
  function loadBreakdown() {
    renderCrumbs();
    var f = filters();
    f.group_by = level().key;
    return api("/api/v1/indicators/on-time", f).then(function (r) {
      S.rows = r.rows;
      renderBreakdown();
    });
  }

  // ---- Biểu 06 ----
  var B06 = ["total", "received_online", "received_offline", "carried_over", "ended", "ended_early",
    "ended_on_day", "ended_late", "in_progress", "in_progress_in_time", "in_progress_overdue"];
  function b06params(format) {
    var f = filters();
    f.group_by = $("b06-group").value;
    if (format) { f.format = format; }
    return f;
  }
  function loadBieu06() {
    var g = $("b06-group");
    text($("b06-grouphead"), g.options[g.selectedIndex].text);
    return api("/api/v1/reports/bieu06", b06params()).then(function (rows) {
      var body = $("bieu06").querySelector("tbody");
      body.innerHTML = "";
      rows.forEach(function (r, i) {
        var tr = document.createElement("tr");
        tr.dataset.code = r.group;
        var total = r.group === "TOTAL";
        if (total) { tr.className = "total"; }
        cell(tr, total ? "" : String(i + 1));
        cell(tr, total ? "Tổng cộng" : r.group_name);
        B06.forEach(function (k) {
          var td = cell(tr, "", (k === "ended_late" || k === "in_progress_overdue") && r[k] > 0 ? "num late" : "num");
          td.dataset.col = k;
          td.appendChild(countA(r[k], b06List("Biểu 06", g.value, r, k)));
        });
        body.appendChild(tr);
      });
    });
  }
  function download(format) {
    var f = b06params(format);
    return api("/api/v1/reports/bieu06", f, true).then(function (blob) {
      var ext = { "form-xlsx": "_mau.xlsx", pdf: ".pdf" }[format] || "." + format;
      saveBlob(blob, "bieu06_" + f.from + "_" + f.to + ext);
    }).catch(function (e) { status(e.message, true); });
  }

  // ---- alerts, sources, reconciliation ----
  function loadAlerts() {
    var f = pick(filters(), ["province", "commune"]);
    f.limit = 50;
    return api("/api/v1/alerts", f).then(function (r) {
      text($("alerts-summary"), "(quá hạn " + num(r.summary.overdue) + ", sắp đến hạn " + num(r.summary.due_soon) +
        ", chưa đồng bộ " + num(r.summary.stale) + ")");
      var body = $("alerts").querySelector("tbody");
      body.innerHTML = "";
      r.items.forEach(function (a) {
        var tr = document.createElement("tr");
        tr.dataset.status = a.status;
        cell(tr, "").appendChild(dossierA(a.dossier_id));
        cell(tr, a.procedure_name || a.procedure_code || "");
        cell(tr, a.agency_name || a.agency_code || "");
        cell(tr, a.commune_code || "");
        cell(tr, dateVi(a.due_at));
        cell(tr, a.working_hours_left === null ? "—" : nf2.format(a.working_hours_left), "num");
        var td = cell(tr, a.status_label);
        td.className = a.status === "stale" ? "stale" : (a.status === "overdue" ? "late" : "");
        cell(tr, a.sources);
        body.appendChild(tr);
      });
      if (!r.items.length) {
        var tr = document.createElement("tr");
        var td = cell(tr, "Không có hồ sơ quá hạn hoặc sắp đến hạn.");
        td.colSpan = 8;
        body.appendChild(tr);
      }
    });
  }
  function loadSources() {
    return api("/api/v1/sources", {}).then(function (r) {
      var body = $("sources").querySelector("tbody");
      body.innerHTML = "";
      r.sources.forEach(function (s) {
        var tr = document.createElement("tr");
        cell(tr, s.source);
        cell(tr, num(s.events), "num");
        cell(tr, num(s.dossiers), "num");
        cell(tr, dateVi(s.last_event_at));
        cell(tr, s.lag_now_seconds === null ? "—" : duration(s.lag_now_seconds));
        cell(tr, s.error_rate === null ? "—" : pct(s.error_rate), "num");
        var td = cell(tr, s.stale ? "Chưa đồng bộ" : "Đang cập nhật");
        if (s.stale) { td.className = "stale"; }
        body.appendChild(tr);
      });
    });
  }
  function loadRecon() {
    var f = pick(filters(), ["from", "to"]);
    f.limit = 1;
    return api("/api/v1/reconciliation", f).then(function (r) {
      var body = $("recon").querySelector("tbody");
      body.innerHTML = "";
      r.totals.forEach(function (k) {
        var tr = document.createElement("tr");
        tr.dataset.kind = k.kind;
        cell(tr, k.label);
        var td = cell(tr, "", k.count > 0 ? "num late" : "num");
        if (k.count > 0) {
          td.appendChild(countA(k.count, { src: "recon", kind: k.kind, from: f.from, to: f.to, t_name: k.label }));
        } else {
          td.textContent = num(k.count);
        }
        body.appendChild(tr);
      });
    });
  }

  // ---- exports ----
  var TRIGGERS = { schedule: "theo lịch", catch_up: "bù (máy chủ dừng lúc đến lịch)", retry: "thử lại", manual: "thủ công" };
  function loadExports() {
    return api("/api/v1/exports", { limit: 20 }).then(function (r) {
      var body = $("exports").querySelector("tbody");
      body.innerHTML = "";
      if (!r.runs.length) {
        var tr = document.createElement("tr");
        var td = cell(tr, r.jobs.length ? "Chưa có lần xuất nào." : "Chưa cấu hình báo cáo định kỳ nào trong phạm vi của bạn.");
        td.colSpan = 6;
        td.className = "muted";
        body.appendChild(tr);
      }
      r.runs.forEach(function (x) {
        var tr = document.createElement("tr");
        tr.dataset.run = x.run_id;
        cell(tr, x.job);
        cell(tr, dateVi(x.period_from) + " – " + dateVi(x.period_to));
        cell(tr, (TRIGGERS[x.trigger] || x.trigger) + (x.attempt > 1 ? " (lần " + x.attempt + ")" : ""));
        cell(tr, instantVi(x.finished_at));
        var st = cell(tr, x.status === "ok" ? "Thành công" : "Lỗi: " + (x.error || ""));
        if (x.status !== "ok") { st.className = "late"; }
        var td = cell(tr, "");
        if (x.download) {
          var a = document.createElement("a");
          a.href = "#";
          a.className = "export-file";
          a.textContent = x.object_key;
          a.title = "SHA-256 " + x.sha256;
          a.onclick = function (e) {
            e.preventDefault();
            fetch(x.download, { headers: { Authorization: "Bearer " + S.token } }).then(function (resp) {
              if (!resp.ok) { throw new Error("HTTP " + resp.status); }
              return resp.blob();
            }).then(function (blob) { saveBlob(blob, x.object_key); })
              .catch(function (err) { status(err.message, true); });
          };
          td.appendChild(a);
        }
        body.appendChild(tr);
      });
    });
  }

  // ---- the list of dossiers behind a number (#/danh-sach?…) ----
  var COLUMN_LABEL = {
    total: "Nhận giải quyết · Tổng số",
    received_online: "Nhận giải quyết · Trong kỳ · Trực tuyến",
    received_offline: "Nhận giải quyết · Trong kỳ · Trực tiếp, bưu chính",
    carried_over: "Nhận giải quyết · Từ kỳ trước chuyển sang",
    ended: "Đã giải quyết · Tổng số",
    ended_early: "Đã giải quyết · Trước hạn",
    ended_on_day: "Đã giải quyết · Đúng hạn",
    ended_late: "Đã giải quyết · Quá hạn",
    in_progress: "Đang giải quyết · Tổng số",
    in_progress_in_time: "Đang giải quyết · Trong hạn",
    in_progress_overdue: "Đang giải quyết · Quá hạn",
    received: "Mới tiếp nhận (trực tuyến, trực tiếp, bưu chính)",
    on_time: "Đúng hạn (trước hạn, đúng hạn, đang trong hạn)",
    late: "Quá hạn (đã giải quyết quá hạn, đang giải quyết quá hạn)"
  };
  var ALERT_LABEL = { overdue: "Quá hạn", due_soon: "Sắp đến hạn", stale: "Chưa đồng bộ" };
  var PAGE = 100;
  var DOSSIER_COLS = ["Mã hồ sơ", "Thủ tục", "Cơ quan", "Xã, phường", "Ngày tiếp nhận", "Hạn xử lý", "Ngày kết thúc", "Phân loại"];
  // what each kind of list reads, and how it shows a row
  var LISTS = {
    bieu06: {
      path: "/api/v1/reports/bieu06/dossiers", formats: ["csv", "xlsx"], cols: DOSSIER_COLS,
      title: function (q) {
        return ["Biểu 06", COLUMN_LABEL[q.get("column")] || q.get("column"), q.get("t_name") || "Tổng cộng",
          viDate(q.get("from")) + "–" + viDate(q.get("to"))].join(" · ");
      },
      asOf: function (q) { return q.get("to"); }
    },
    "766": {
      path: "/api/v1/indicators/766/dossiers", formats: ["csv", "xlsx"], cols: DOSSIER_COLS,
      title: function (q) {
        var p = (q.get("period") || "").split("..");
        return ["Chỉ số 766", q.get("t_name"), q.get("t_count") || q.get("count"),
          p.length === 2 ? viDate(p[0]) + "–" + viDate(p[1]) : q.get("period")].filter(Boolean).join(" · ");
      },
      asOf: function (q) { var p = (q.get("period") || "").split(".."); return p.length === 2 ? p[1] : null; }
    },
    recon: {
      path: "/api/v1/reconciliation", formats: ["csv"], cols: ["Mã hồ sơ", "Hệ thống", "Đối chiếu với", "Nội dung sai lệch"],
      title: function (q) {
        return ["Đối soát", q.get("t_name") || q.get("kind"), "hồ sơ có sự kiện đầu tiên " +
          viDate(q.get("from")) + "–" + viDate(q.get("to"))].join(" · ");
      },
      asOf: function () { return null; }
    },
    alerts: {
      path: "/api/v1/alerts", formats: ["csv"],
      cols: ["Mã hồ sơ", "Thủ tục", "Cơ quan", "Xã, phường", "Hạn xử lý", "Giờ làm việc còn lại", "Tình trạng", "Hệ thống"],
      title: function (q) { return "Hồ sơ " + (ALERT_LABEL[q.get("status")] || "").toLowerCase() + " · hiện tại"; },
      asOf: function () { return null; }
    }
  };
  // the API parameters of a list: the hash's, less the page's own (src, t_*, status)
  function listQuery(q, extra) {
    var p = {};
    q.forEach(function (v, k) {
      if (k === "src" || k === "status" || k.indexOf("t_") === 0) { return; }
      p[k] = v;
    });
    Object.keys(extra || {}).forEach(function (k) { p[k] = extra[k]; });
    return p;
  }
  function listStatus(msg, isError) {
    var el = $("list-status");
    el.textContent = msg || "";
    el.className = isError ? "late" : "muted";
  }
  function openList(q) {
    var kind = LISTS[q.get("src")] || LISTS.bieu06;
    var gen = ++S.listGen;
    var view = $("list-view");
    S.list = { q: q, kind: kind, cursor: null, shown: 0, count: null, gen: gen, all: null };
    view.dataset.state = "loading";
    view.dataset.count = "";
    text($("list-title"), kind.title(q));
    document.title = kind.title(q) + " — giamsat";
    var scope = [q.get("t_scope"), q.get("t_ctx") ? "Từ: " + q.get("t_ctx") : ""].filter(Boolean).join(" · ");
    text($("list-scope"), scope);
    text($("list-count"), "…");
    text($("list-shown"), "");
    var head = $("list-table").querySelector("thead");
    head.innerHTML = "";
    var hr = document.createElement("tr");
    kind.cols.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; hr.appendChild(th); });
    head.appendChild(hr);
    $("list-table").querySelector("tbody").innerHTML = "";
    $("list-more").classList.add("hidden");
    $("list-csv").classList.toggle("hidden", kind.formats.indexOf("csv") < 0);
    $("list-xlsx").classList.toggle("hidden", kind.formats.indexOf("xlsx") < 0);
    return morePage();
  }
  function listRow(kind, q, it) {
    var tr = document.createElement("tr");
    var asOf = kind.asOf(q);
    tr.dataset.id = it.dossier_id;
    var link = dossierA(it.dossier_id, asOf);
    cell(tr, "").appendChild(link);
    if (kind === LISTS.recon) {
      cell(tr, it.source_a);
      cell(tr, it.source_b || "—");
      cell(tr, it.detail);
    } else if (kind === LISTS.alerts) {
      tr.dataset.status = it.status;
      cell(tr, it.procedure_name || it.procedure_code || "");
      cell(tr, it.agency_name || it.agency_code || "");
      cell(tr, it.commune_code || "");
      cell(tr, dateVi(it.due_at), "nowrap");
      cell(tr, it.working_hours_left === null ? "—" : nf2.format(it.working_hours_left), "num");
      cell(tr, it.status_label, it.status === "stale" ? "stale" : (it.status === "overdue" ? "late" : ""));
      cell(tr, it.sources);
    } else {
      tr.dataset.class = it["class"] || "";
      cell(tr, it.procedure_name || it.procedure_code || "");
      cell(tr, it.agency_name || it.agency_code || "");
      cell(tr, it.commune_name || it.commune_code || "");
      cell(tr, dateVi(it.received_at), "nowrap");
      cell(tr, dateVi(it.due_at), "nowrap");
      cell(tr, dateVi(it.ended_at), "nowrap");
      var td = cell(tr, "");
      td.className = "cls";
      var b = document.createElement("span");
      b.className = "badge cls-" + (it["class"] || "none");
      b.textContent = it.class_label || "—";
      td.appendChild(b);
    }
    // the whole row opens the dossier (the id is the keyboard's link)
    tr.addEventListener("click", function (e) {
      if (e.target.closest("a")) { return; }
      location.hash = link.getAttribute("href");
    });
    return tr;
  }
  function morePage() {
    var L = S.list;
    if (!L) { return Promise.resolve(); }
    var view = $("list-view"), more = $("list-more");
    more.disabled = true;
    listStatus("Đang tải…");
    var page;
    if (L.kind === LISTS.alerts) {
      // the alert list has no pages: read it once, keep one status, show it PAGE by PAGE
      page = (L.all ? Promise.resolve(L.all) : api(L.kind.path, listQuery(L.q, { limit: 1 }), true).then(function (r) {
        return api(L.kind.path, listQuery(L.q, { limit: Math.max(r.summary.total, 1) }), true);
      }).then(function (r) {
        var st = L.q.get("status");
        L.all = { count: r.summary[st] || 0, items: r.items.filter(function (x) { return x.status === st; }) };
        return L.all;
      })).then(function (all) {
        var items = all.items.slice(L.shown, L.shown + PAGE);
        return { count: all.count, items: items, next_cursor: L.shown + items.length < all.items.length ? "more" : null };
      });
    } else if (L.kind === LISTS.recon) {
      page = api(L.kind.path, listQuery(L.q, { limit: PAGE, cursor: L.cursor }), true).then(function (r) {
        var t = r.totals.filter(function (x) { return x.kind === L.q.get("kind"); })[0];
        return { count: t ? t.count : r.items.length, items: r.items, next_cursor: r.next_cursor };
      });
    } else {
      page = api(L.kind.path, listQuery(L.q, { limit: PAGE, cursor: L.cursor }), true);
    }
    return page.then(function (r) {
      if (L.gen !== S.listGen) { return; }
      L.count = r.count;
      L.cursor = r.next_cursor;
      var body = $("list-table").querySelector("tbody");
      r.items.forEach(function (it) { body.appendChild(listRow(L.kind, L.q, it)); });
      L.shown += r.items.length;
      text($("list-count"), num(r.count));
      text($("list-shown"), L.shown < r.count ? "(đang hiện " + num(L.shown) + ")" : "");
      if (!L.shown) {
        var tr = document.createElement("tr");
        var td = cell(tr, "Không có hồ sơ nào.");
        td.colSpan = L.kind.cols.length;
        td.className = "muted";
        body.appendChild(tr);
      }
      more.classList.toggle("hidden", !r.next_cursor);
      more.disabled = false;
      listStatus("");
      view.dataset.count = String(r.count);
      view.dataset.shown = String(L.shown);
      view.dataset.state = "ready";
    }, function (e) {
      if (L.gen !== S.listGen) { return; }
      more.disabled = false;
      listStatus(e.message, true);
      view.dataset.state = "error";
    });
  }
  function listDownload(format) {
    var L = S.list;
    if (!L) { return; }
    var name = "ho-so_" + (L.q.get("column") || L.q.get("count") || L.q.get("kind") || L.q.get("status") || "danh-sach");
    var from = L.q.get("from"), to = L.q.get("to"), per = (L.q.get("period") || "").split("..");
    if (from && to) { name += "_" + from + "_" + to; } else if (per.length === 2) { name += "_" + per[0] + "_" + per[1]; }
    listStatus("Đang tải tệp…");
    api(L.kind.path, listQuery(L.q, { format: format, limit: L.kind === LISTS.alerts ? Math.max(L.count || 0, 1) : null }), true)
      .then(function (blob) { saveBlob(blob, name + "." + format); listStatus(""); })
      .catch(function (e) { listStatus(e.message, true); });
  }

  // ---- one dossier explained (#/ho-so/<id>?as_of=…) ----
  var SRC_COLORS = ["#8c1d18", "#0b57a4", "#1f7a3a", "#a05a00", "#6a3d9a", "#00838f", "#c2185b", "#5d4037"];
  var CHANNEL = { online: "Trực tuyến", in_person: "Trực tiếp", postal: "Bưu chính" };
  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (txt !== undefined && txt !== null) { e.textContent = txt; }
    return e;
  }
  function facts(pairs) {
    var dl = el("dl", "facts");
    pairs.forEach(function (p) {
      if (p[1] === undefined) { return; }
      var dd = el("dd");
      dd.dataset.k = p[2] || "";
      if (p[1] instanceof Node) { dd.appendChild(p[1]); } else { dd.textContent = p[1] === null || p[1] === "" ? "—" : p[1]; }
      dl.appendChild(el("dt", null, p[0]));
      dl.appendChild(dd);
    });
    return dl;
  }
  function sectionOf(title, id) {
    var s = el("section");
    if (id) { s.id = id; }
    s.appendChild(el("h2", null, title));
    return s;
  }
  function table(cols, rows, id) {
    var wrap = el("div", "table-wrap");
    var t = el("table");
    if (id) { t.id = id; }
    var hr = el("tr");
    cols.forEach(function (c) { hr.appendChild(el("th", null, c)); });
    var th = el("thead");
    th.appendChild(hr);
    t.appendChild(th);
    var tb = el("tbody");
    rows.forEach(function (r) { tb.appendChild(r); });
    t.appendChild(tb);
    wrap.appendChild(t);
    return wrap;
  }
  function attrsText(a) {
    if (a === null || a === undefined) { return ""; }
    if (typeof a !== "object") { return String(a); }
    return Object.keys(a).map(function (k) {
      var v = a[k];
      return k + ": " + (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));
    }).join(" · ");
  }
  function dayList(days) {
    var ul = el("ul", "days");
    days.forEach(function (d) { ul.appendChild(el("li", null, dateVi(d.date) + " " + d.name)); });
    return ul;
  }
  function loadDossier(id, asOf) {
    var gen = ++S.dossierGen;
    var view = $("dossier-view"), body = $("dossier-body");
    view.dataset.state = "loading";
    body.innerHTML = "";
    var ld = el("section");
    ld.appendChild(el("p", "muted", "Đang tải hồ sơ " + id + "…"));
    body.appendChild(ld);
    document.title = "Hồ sơ " + id + " — giamsat";
    return api("/api/v1/dossiers/" + encodeURIComponent(id), { as_of: asOf }, true).then(function (d) {
      if (gen !== S.dossierGen) { return; }
      renderDossier(d);
      view.dataset.state = "ready";
    }, function (e) {
      if (gen !== S.dossierGen) { return; }
      body.innerHTML = "";
      if (e.status === 404) {
        // unknown or outside the token's territory: the same page either way
        var nfs = el("section");
        nfs.appendChild(el("h2", "notfound", "Không tìm thấy hồ sơ"));
        body.appendChild(nfs);
        view.dataset.state = "notfound";
      } else {
        var er = el("section");
        er.appendChild(el("p", "late", e.message));
        body.appendChild(er);
        view.dataset.state = "error";
      }
    });
  }
  function renderDossier(d) {
    var body = $("dossier-body");
    body.innerHTML = "";
    var s = d.summary || {};
    var c = d["class"] || {};
    var due = d.due || {};
    var hpd = due.working_hours_per_day || 8;
    var head = el("section", "view-head dossier-head");
    head.appendChild(el("h2", null, "Hồ sơ " + d.dossier_id));
    if (d.as_of) { head.appendChild(el("span", "muted", "Phân loại xét tại cuối ngày " + dateVi(d.as_of) + " (cuối kỳ báo cáo)")); }
    body.appendChild(head);

    // the class, and why
    var cls = sectionOf("Phân loại", "dossier-class-section");
    var p = el("p", "reason");
    p.id = "dossier-class";
    p.dataset.code = c.code || "";
    var badge = el("span", "badge cls-" + (c.code || "none"), c.label || "Không phân loại");
    p.appendChild(badge);
    if (c.reason) { p.appendChild(document.createTextNode(" " + c.reason)); }
    cls.appendChild(p);
    cls.appendChild(facts([
      ["Thời điểm xét", instantVi(c.evaluated_at || d.judged_at)],
      ["Hạn xử lý", instantVi(due.at || s.due_at)],
      ["Kết thúc", instantVi(s.ended_at)],
      ["Kết quả", s.end_type_label || (s.ended_at ? s.end_type : "Đang giải quyết")],
      ["Tính vào Biểu 06", s.counted === undefined ? undefined : (s.counted ? "Có" : "Không")]
    ]));
    body.appendChild(cls);

    // summary
    var sum = sectionOf("Thông tin hồ sơ", "dossier-summary");
    sum.appendChild(facts([
      ["Mã hồ sơ", d.dossier_id, "dossier_id"],
      ["Thủ tục", [s.procedure_name, s.procedure_code ? "(" + s.procedure_code + ")" : ""].filter(Boolean).join(" "), "procedure"],
      ["Lĩnh vực", [s.field_name, s.field_code ? "(" + s.field_code + ")" : ""].filter(Boolean).join(" ")],
      ["Cơ quan", [s.agency_name, s.agency_code ? "(" + s.agency_code + ")" : ""].filter(Boolean).join(" ")],
      ["Xã, phường", [s.commune_name, s.commune_code ? "(" + s.commune_code + ")" : ""].filter(Boolean).join(" "), "commune"],
      ["Tỉnh", s.province_code || ""],
      ["Kênh nộp", CHANNEL[s.channel] || s.channel || ""],
      ["Hệ thống", s.sources || ""],
      ["Tiếp nhận", instantVi(s.received_at) + (d.received ? " (theo " + d.received.source + ", sự kiện " + d.received.event_id + ")" : "")]
    ]));
    body.appendChild(sum);

    // the due time, explained
    var ds = sectionOf("Thời hạn giải quyết", "dossier-due");
    var dueFacts = [
      ["Cách xác định", due.kind_label || due.kind || "—", "due_kind"],
      ["Hạn xử lý", instantVi(due.at)]
    ];
    if (due.max_working_days !== null && due.max_working_days !== undefined) {
      dueFacts.push(["Thời hạn theo quy định", nf2.format(due.max_working_days) + " ngày làm việc (" + nf2.format(hpd) + " giờ/ngày)"]);
    }
    if (due.reported_by) { dueFacts.push(["Hạn do hệ thống báo", due.reported_by.source + " (sự kiện " + due.reported_by.event_id + ")"]); }
    if (due.supplement_working_seconds) { dueFacts.push(["Cộng thời gian bổ sung hồ sơ", workDur(due.supplement_working_seconds, hpd) + " làm việc"]); }
    ds.appendChild(facts(dueFacts));
    if (due.text) { ds.appendChild(el("p", null, due.text)); }
    var off = due.days_off || [], make = due.working_weekend_days || [];
    if (off.length) {
      ds.appendChild(el("h3", "muted", "Ngày nghỉ không tính (" + num(off.length) + ")"));
      ds.appendChild(dayList(off));
    }
    if (make.length) {
      ds.appendChild(el("h3", "muted", "Ngày làm bù vào thứ bảy, chủ nhật (" + num(make.length) + ")"));
      ds.appendChild(dayList(make));
    }
    body.appendChild(ds);

    // supplement rounds
    var sup = d.supplements || [];
    var ss = sectionOf("Yêu cầu bổ sung hồ sơ (" + num(sup.length) + ")", "dossier-supplements");
    if (sup.length) {
      ss.appendChild(table(["Lần", "Yêu cầu bổ sung", "Nhận bổ sung", "Thời gian làm việc", "Thời gian thực tế"], sup.map(function (r) {
        var tr = el("tr");
        cell(tr, num(r.round), "num");
        cell(tr, instantVi(r.requested_at), "nowrap");
        cell(tr, r.received_at ? instantVi(r.received_at) : "Chưa nhận", "nowrap");
        cell(tr, r.working_seconds === null || r.working_seconds === undefined ? "—" : workDur(r.working_seconds, hpd));
        cell(tr, r.wall_seconds === null || r.wall_seconds === undefined ? "—" : duration(r.wall_seconds));
        return tr;
      })));
    } else {
      ss.appendChild(el("p", "muted", "Không có yêu cầu bổ sung."));
    }
    body.appendChild(ss);

    // the timeline, one colour per source
    var ev = d.events || [];
    var es = sectionOf("Dòng thời gian (" + num(ev.length) + " sự kiện)", "dossier-events");
    var colors = {};
    ev.forEach(function (e) { if (!(e.source in colors)) { colors[e.source] = SRC_COLORS[Object.keys(colors).length % SRC_COLORS.length]; } });
    var legend = el("div", "legend");
    Object.keys(colors).forEach(function (k) {
      var it = el("span");
      var sw = el("span", "src");
      sw.style.background = colors[k];
      it.appendChild(sw);
      it.appendChild(document.createTextNode(k + " (" + num(ev.filter(function (e) { return e.source === k; }).length) + ")"));
      legend.appendChild(it);
    });
    es.appendChild(legend);
    es.appendChild(table(["Thời điểm", "Hệ thống", "Sự kiện", "Hạn xử lý", "Ghi nhận lúc", "Chi tiết"], ev.map(function (e) {
      var tr = el("tr");
      tr.dataset.source = e.source;
      var t0 = cell(tr, instantVi(e.at), "nowrap");
      t0.style.borderLeftColor = colors[e.source];
      var sc = cell(tr, "", "nowrap");
      var sw = el("span", "src");
      sw.style.background = colors[e.source];
      sc.appendChild(sw);
      sc.appendChild(document.createTextNode(e.source));
      cell(tr, e.type_label || e.type);
      cell(tr, e.due_at ? instantVi(e.due_at) : "", "nowrap");
      cell(tr, instantVi(e.ingested_at), "nowrap");
      cell(tr, [e.event_id ? "mã " + e.event_id : "", attrsText(e.attrs)].filter(Boolean).join(" · "), "attrs");
      return tr;
    }), "events"));
    body.appendChild(es);

    // discrepancies between sources, data quality
    var dis = d.discrepancies || [];
    var xs = sectionOf("Sai lệch giữa các hệ thống (" + num(dis.length) + ")", "dossier-discrepancies");
    if (dis.length) {
      xs.appendChild(table(["Loại sai lệch", "Hệ thống", "Nội dung"], dis.map(function (x) {
        var tr = el("tr");
        cell(tr, x.kind_label || x.kind);
        cell(tr, x.source_a + (x.source_b ? " ↔ " + x.source_b : ""), "nowrap");
        cell(tr, x.detail || "");
        return tr;
      })));
    } else {
      xs.appendChild(el("p", "muted", "Các hệ thống khớp nhau."));
    }
    body.appendChild(xs);
    var q = d.quality || [];
    var qs = sectionOf("Chất lượng dữ liệu (" + num(q.length) + ")", "dossier-quality");
    if (q.length) {
      var ul = el("ul");
      q.forEach(function (x) { var li = el("li", null, x.label || x.code); li.dataset.code = x.code; ul.appendChild(li); });
      qs.appendChild(ul);
    } else {
      qs.appendChild(el("p", "muted", "Không có cảnh báo chất lượng dữ liệu."));
    }
    body.appendChild(qs);
  }

  // ---- views: the dashboard, a list, a dossier (hash routes, so Back works) ----
  var TITLE = document.title;
  function show(view) {
    if (S.view === "dash" && view !== "dash") { S.dashScroll = window.scrollY; }
    if (S.view === "list" && view !== "list") { S.listScroll = window.scrollY; }
    $("dash").classList.toggle("hidden", view !== "dash");
    $("list-view").classList.toggle("hidden", view !== "list");
    $("dossier-view").classList.toggle("hidden", view !== "dossier");
    document.body.dataset.view = view;
    var was = S.view;
    S.view = view;
    if (view === "dash") {
      document.title = TITLE;
      Object.keys(charts).forEach(function (k) { charts[k].resize(); });
      if (was !== "dash") { window.scrollTo(0, S.dashScroll); }
    } else {
      window.scrollTo(0, 0);
    }
  }
  function route() {
    var h = location.hash, m;
    if ((m = /^#\/ho-so\/([^?]+)(?:\?(.*))?$/.exec(h))) {
      show("dossier");
      var q = new URLSearchParams(m[2] || "");
      loadDossier(decodeURIComponent(m[1]), q.get("as_of"));
    } else if ((m = /^#\/danh-sach\?(.*)$/.exec(h))) {
      var again = S.list && S.list.hash === h && $("list-view").dataset.state === "ready";
      show("list");
      if (again) {
        // back from a dossier: the list as it was, pages already read included
        window.scrollTo(0, S.listScroll || 0);
      } else {
        openList(new URLSearchParams(m[1]));
        S.list.hash = h;
      }
    } else {
      show("dash");
    }
  }
  window.addEventListener("hashchange", function () { S.cameFrom = true; if (S.me) { route(); } });
  $("list-more").addEventListener("click", function () { morePage(); });
  $("list-csv").addEventListener("click", function () { listDownload("csv"); });
  $("list-xlsx").addEventListener("click", function () { listDownload("xlsx"); });
  $("dossier-back").addEventListener("click", function (e) {
    // back to where the dossier was opened from, when that was this page
    if (S.cameFrom) { e.preventDefault(); history.back(); }
  });

  // ---- wiring ----
  function checkDates() {
    var ok = true;
    ["from", "to"].forEach(function (id) {
      var v = dateField(id);
      if (v) { setDateField(id, v); } else { $(id).setAttribute("aria-invalid", "true"); ok = false; }
    });
    if (!ok) { status("Ngày không hợp lệ: nhập theo dạng dd/mm/yyyy, ví dụ 31/03/2026.", true); return false; }
    if (dateField("from") > dateField("to")) {
      $("to").setAttribute("aria-invalid", "true");
      status("\"Từ ngày\" phải trước hoặc trùng \"Đến ngày\".", true);
      return false;
    }
    return true;
  }
  function refresh() {
    if (!$("from").value.trim() || !$("to").value.trim()) { applyPreset(); }
    if (!checkDates()) { document.body.dataset.ready = "error"; return Promise.resolve(); }
    S.gen += 1;
    status("Đang tải…");
    return Promise.all([loadOverview(), loadTrend(), loadBreakdown(), loadBieu06(), loadAlerts(), loadSources(), loadRecon(), loadExports()])
      .then(function () { status("Đã cập nhật lúc " + new Date().toLocaleTimeString("vi-VN")); document.body.dataset.ready = "1"; })
      .catch(function (e) {
        if (e === STALE) { return; }
        status(e.message, true);
        document.body.dataset.ready = "error";
      });
  }
  function signIn(token) {
    S.token = token;
    return api("/api/v1/me", {}).then(function (me) {
      S.me = me;
      sessionStorage.setItem("giamsat_token", token);
      text($("who"), me.label);
      $("signin").classList.add("hidden");
      $("app").classList.remove("hidden");
      $("signout").classList.remove("hidden");
      S.start = me.communes.length && !me.provinces.length ? 1 : 0;
      charts.trend = echarts.init($("chart-trend"));
      charts.i766 = echarts.init($("chart-766"));
      charts.breakdown = echarts.init($("chart-breakdown"));
      window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
      if ($("preset").value !== "custom") { applyPreset(); }
      route();
      return refresh();
    });
  }
  $("signin-form").addEventListener("submit", function (e) {
    e.preventDefault();
    signIn($("token").value.trim()).catch(function (err) {
      sessionStorage.removeItem("giamsat_token");
      var p = document.createElement("p");
      p.className = "late";
      p.id = "signin-error";
      p.textContent = err.message;
      var old = $("signin-error");
      if (old) { old.remove(); }
      $("signin").appendChild(p);
    });
  });
  $("signout").addEventListener("click", function () { sessionStorage.removeItem("giamsat_token"); location.reload(); });
  $("preset").addEventListener("change", function () {
    // "custom" changes nothing until the user presses Xem
    if ($("preset").value === "custom") { return; }
    applyPreset();
    if (S.token) { refresh(); }
  });
  ["from", "to"].forEach(function (id) {
    $(id).addEventListener("change", function () {
      $("preset").value = "custom";
      var v = dateField(id);
      // tidy "1/3/2026" into "01/03/2026"; flag what cannot be read
      if (v) { setDateField(id, v); } else if ($(id).value.trim()) { $(id).setAttribute("aria-invalid", "true"); }
    });
    $(id).addEventListener("input", function () { $(id).removeAttribute("aria-invalid"); });
  });
  $("period-form").addEventListener("submit", function (e) { e.preventDefault(); refresh(); });
  $("b06-group").addEventListener("change", function () {
    loadBieu06().catch(function (e) { if (e !== STALE) { status(e.message, true); } });
  });
  $("dl-csv").addEventListener("click", function () { download("csv"); });
  $("dl-xlsx").addEventListener("click", function () { download("xlsx"); });
  $("dl-form").addEventListener("click", function () { download("form-xlsx"); });
  $("dl-pdf").addEventListener("click", function () { download("pdf"); });
  // `giamsat demo` prints a link /#token=…&from=…&to=…: sign in with it, then forget it
  // (a hash starting with "#/" is a page of the dashboard: a list or a dossier, kept)
  var isRoute = /^#\//.test(location.hash);
  var h = new URLSearchParams(isRoute ? "" : location.hash.replace(/^#/, ""));
  if (h.get("from") && h.get("to") && parseViDate(h.get("from")) && parseViDate(h.get("to"))) {
    $("preset").value = "custom";
    setDateField("from", parseViDate(h.get("from")));
    setDateField("to", parseViDate(h.get("to")));
  }
  var saved = h.get("token") || sessionStorage.getItem("giamsat_token");
  if (location.hash && !isRoute) { history.replaceState(null, "", location.pathname); }
  if (saved) { signIn(saved).catch(function () { sessionStorage.removeItem("giamsat_token"); }); }
})();
