// Owner's results page: reads /api/studies/<study>/results with the owner token. No external code.
(function () {
  "use strict";
  const study = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const api = "/api/studies/" + encodeURIComponent(study);
  const token = new URLSearchParams(location.search).get("token") || "";
  const $ = (id) => document.getElementById(id);
  const pct = (x) => (x === null || x === undefined) ? "–" : (100 * x).toFixed(1) + " %";
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function chart(rows) {
    const fakes = rows.filter((r) => r.truth === "fake");
    const W = 640, rowH = 34, left = 150, right = 30, H = 40 + rowH * fakes.length;
    const x = (v) => left + (W - left - right) * v;
    const svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      svg.appendChild(el("line", { x1: x(t), x2: x(t), y1: 10, y2: H - 20, stroke: t === 0.5 ? "#b2452f" : "#dde", "stroke-dasharray": t === 0.5 ? "4 3" : "" }));
      svg.appendChild(el("text", { x: x(t), y: H - 5, "text-anchor": "middle", "font-size": 11, fill: "#5b6478" }, (100 * t) + "%"));
    }
    fakes.forEach((r, i) => {
      const y = 14 + i * rowH;
      svg.appendChild(el("text", { x: left - 8, y: y + 15, "text-anchor": "end", "font-size": 12 }, r.source));
      if (r.hype === null) return;
      svg.appendChild(el("rect", { x: x(0), y: y + 3, width: x(r.hype) - x(0), height: 18, fill: "#3657c8", rx: 3 }));
      if (r.hype_ci[0] !== null) {
        const [lo, hi] = r.hype_ci;
        svg.appendChild(el("line", { x1: x(lo), x2: x(hi), y1: y + 12, y2: y + 12, stroke: "#111", "stroke-width": 2 }));
        for (const v of [lo, hi]) svg.appendChild(el("line", { x1: x(v), x2: x(v), y1: y + 5, y2: y + 19, stroke: "#111", "stroke-width": 2 }));
      }
    });
    $("chart").innerHTML = ""; $("chart").appendChild(svg);
  }

  function thumbs(div, list, empty) {
    div.innerHTML = list.length ? "" : "<span class='muted'>" + (empty || "no votes on generated images yet") + "</span>";
    for (const d of list) {
      const f = document.createElement("figure");
      f.innerHTML = "<img alt='' src='" + api + "/images/" + esc(d.image_id) + "'><figcaption>" + esc(d.source) +
        "<br>" + pct(d.judged_real_rate) + " of " + d.votes + "</figcaption>";
      div.appendChild(f);
    }
  }

  async function load() {
    const inc = $("include-failed").checked ? "&include_failed=true" : "";
    const r = await fetch(api + "/results?token=" + encodeURIComponent(token) + inc);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { $("error").textContent = data.detail || ("error " + r.status); $("error").classList.remove("hidden"); return; }
    $("error").classList.add("hidden");
    $("study").textContent = data.study;
    $("summary").textContent = data.sessions + (data.sessions === 1 ? " session (" : " sessions (") + "" + data.sessions_failed_attention + " failed an attention check, " +
      (data.excluded_failed_attention ? "excluded" : "included") + "); " + data.votes_scored + " scored votes of " + data.votes_total + ".";
    const ci = (a) => (a[0] === null || a[1] === null) ? "–" : pct(a[0]) + " – " + pct(a[1]);
    const tb = $("sources").querySelector("tbody"); tb.innerHTML = "";
    for (const s of data.sources) {
      const tr = document.createElement("tr");
      const real = s.truth === "real";
      const w = real ? s.error_on_reals_wilson : s.pooled_error_wilson;
      tr.innerHTML = "<td>" + esc(s.source) + "</td><td>" + (real ? "real" : "generated") + "</td><td>" + s.votes + "</td><td>" + s.raters +
        "</td><td>" + pct(s.accuracy) + "</td><td>" + (real ? "–" : pct(s.error_on_fakes)) + "</td><td>" + pct(s.error_on_reals) +
        "</td><td><b>" + (real ? "–" : pct(s.hype)) + "</b></td><td>" + (real ? "–" : ci(s.hype_ci)) +
        "</td><td>" + ci(w) + "</td>";
      tb.appendChild(tr);
    }
    chart(data.sources);
    $("corr").innerHTML = data.rank_correlations.length ? data.rank_correlations.map((c) =>
      esc(c.score) + ": Spearman ρ = " + c.spearman.toFixed(3) + ", Kendall τ = " + c.kendall.toFixed(3) + " over " + c.n +
      " generators (expected sign " + (c.expected_sign > 0 ? "+" : "−") + ")").join("<br>")
      : "Needs at least two generators with IS/FID scores in the study.";
    thumbs($("most"), data.most_convincing_fakes, "no generated image was called real yet");
    thumbs($("least"), data.least_convincing_fakes);
    const ib = $("images").querySelector("tbody"); ib.innerHTML = "";
    for (const d of data.images) {
      const tr = document.createElement("tr");
      tr.innerHTML = "<td><code>" + esc(d.image_id) + "</code></td><td>" + esc(d.source) + "</td><td>" + d.truth + "</td><td>" +
        d.votes + "</td><td>" + pct(d.judged_real_rate) + "</td>";
      ib.appendChild(tr);
    }
    $("csv").href = api + "/votes.csv?token=" + encodeURIComponent(token);
  }
  $("include-failed").onchange = load;
  load();
})();
