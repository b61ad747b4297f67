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
  var S = { token: null, me: null, path: [], start: 0, sort: { key: "total", dir: -1 }, rows: [], gen: 0 };
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
  function text(el, s) { el.textContent = s; return el; }
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
      if (v !== null && v !== undefined && v !== "") { q.set(k, v); }
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
      return r.json().then(function (b) { throw new Error(b.error || ("HTTP " + r.status)); },
        function () { throw new Error("HTTP " + r.status); });
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
    $("from").value = iso(r[0]);
    $("to").value = iso(r[1]);
  }

  // ---- filters: period, level, phi địa giới, and the drill-down path ----
  function filters(withPath) {
    var f = {
      from: $("from").value,
      to: $("to").value,
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

  // ---- overview ----
  function delta(now, before, asPct) {
    if (before === null || before === undefined || now === null || now === undefined) { return ""; }
    var d = now - before;
    var s = asPct ? nf2.format(d * 100) + " điểm %" : nf2.format(d);
    var cls = d > 0 ? "up" : (d < 0 ? "down" : "");
    return "<span class=\"" + cls + "\">" + (d > 0 ? "+" : "") + s + "</span> so với kỳ trước";
  }
  function kpi(id, value, sub) {
    var el = $(id);
    el.querySelector(".v").textContent = value;
    el.querySelector(".s").innerHTML = sub;
  }
  function loadOverview() {
    var f = filters();
    return api("/api/v1/dashboard/overview", f).then(function (o) {
      var c = o.current, b = o.before;
      text($("period-label"), "(" + dateVi(o.period.from) + " – " + dateVi(o.period.to) + ")");
      kpi("kpi-received", num(c.received_online + c.received_offline),
        "Trực tuyến " + num(c.received_online) + " · Trực tiếp, bưu chính " + num(c.received_offline) +
        "<br>" + delta(c.received_online + c.received_offline, b ? b.received_online + b.received_offline : null));
      kpi("kpi-ontime", pct(c.rate), "Đúng hạn " + num(c.on_time) + " / " + num(c.total) + " hồ sơ<br>" + delta(c.rate, b ? b.rate : null, true));
      kpi("kpi-ended", num(c.ended), "Trước hạn " + num(c.ended_early) + " · Đúng hạn " + num(c.ended_on_day) +
        " · <span class=\"late\">Quá hạn " + num(c.ended_late) + "</span>");
      kpi("kpi-inprogress", num(c.in_progress), "Trong hạn " + num(c.in_progress_in_time) +
        " · <span class=\"late\">Quá hạn " + num(c.in_progress_overdue) + "</span>");
      kpi("kpi-overdue-now", num(o.alerts.overdue), "Sắp đến hạn " + num(o.alerts.due_soon) +
        " · <span class=\"stale\">Chưa đồng bộ " + num(o.alerts.stale) + "</span>");
      kpi("kpi-766", pts(o.index766.total), delta(o.index766.total, o.index766_previous, false).replace(/ so với/, " điểm so với"));
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

  // ---- trend ----
  function loadTrend() {
    var f = filters();
    f.series = "month";
    f.group_by = "field";
    return api("/api/v1/indicators/on-time", f).then(function (r) {
      var s = r.series;
      charts.trend.setOption({
        tooltip: { trigger: "axis" },
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
    root.onclick = function () { S.path = []; refresh(); };
    el.appendChild(root);
    S.path.forEach(function (p, i) {
      el.appendChild(document.createTextNode(" › "));
      var a = document.createElement("a");
      a.textContent = p.name || p.code;
      a.onclick = function () { S.path = S.path.slice(0, i + 1); refresh(); };
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
        a.onclick = function () { S.path.push({ level: lv.key, code: r.group, name: r.group_name }); refresh(); };
        c1.appendChild(a);
      }
      void c0;
      cell(tr, num(r.total), "num");
      cell(tr, num(r.ended), "num");
      cell(tr, num(r.late), r.late > 0 ? "num late" : "num");
      cell(tr, num(r.in_progress), "num");
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
      tooltip: { trigger: "axis" },
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
          cell(tr, num(r[k]), (k === "ended_late" || k === "in_progress_overdue") && r[k] > 0 ? "num late" : "num");
        });
        body.appendChild(tr);
      });
    });
  }
  function download(format) {
    var f = b06params(format);
    return api("/api/v1/reports/bieu06", f, true).then(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      var ext = { "form-xlsx": "_mau.xlsx", pdf: ".pdf" }[format] || "." + format;
      a.download = "bieu06_" + f.from + "_" + f.to + ext;
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
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
        cell(tr, a.dossier_id);
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
        cell(tr, num(k.count), k.count > 0 ? "num late" : "num");
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
        cell(tr, new Date(x.finished_at).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }));
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
            }).then(function (blob) {
              var l = document.createElement("a");
              l.href = URL.createObjectURL(blob);
              l.download = x.object_key;
              document.body.appendChild(l);
              l.click();
              setTimeout(function () { URL.revokeObjectURL(l.href); l.remove(); }, 1000);
            }).catch(function (err) { status(err.message, true); });
          };
          td.appendChild(a);
        }
        body.appendChild(tr);
      });
    });
  }

  // ---- wiring ----
  function refresh() {
    if (!$("from").value || !$("to").value) { applyPreset(); }
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
  $("from").addEventListener("change", function () { $("preset").value = "custom"; });
  $("to").addEventListener("change", function () { $("preset").value = "custom"; });
  $("period-form").addEventListener("submit", function (e) { e.preventDefault(); refresh(); });
  $("b06-group").addEventListener("change", function () {
    loadBieu06().catch(function (e) { if (e !== STALE) { status(e.message, true); } });
  });
  $("dl-csv").addEventListener("click", function () { download("csv"); });
  $("dl-xlsx").addEventListener("click", function () { download("xlsx"); });
  $("dl-form").addEventListener("click", function () { download("form-xlsx"); });
  $("dl-pdf").addEventListener("click", function () { download("pdf"); });
  // `giamsat demo` prints a link /#token=…&from=…&to=…: sign in with it, then forget it
  var h = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (h.get("from") && h.get("to")) {
    $("preset").value = "custom";
    $("from").value = h.get("from");
    $("to").value = h.get("to");
  }
  var saved = h.get("token") || sessionStorage.getItem("giamsat_token");
  if (location.hash) { history.replaceState(null, "", location.pathname); }
  if (saved) { signIn(saved).catch(function () { sessionStorage.removeItem("giamsat_token"); }); }
})();
