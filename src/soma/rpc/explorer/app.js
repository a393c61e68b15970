// soma explorer: plain JavaScript, no framework, no build step, nothing loaded from
// outside this API. Pages are routed by the URL's hash (#/tx/<digest>, #/commit/<n>,
// #/object/<id>, #/address/<a>); the overview (#/) refreshes itself while shown.
// Every value from the API reaches the page as text (textContent), never as HTML.
"use strict";

(function () {
  const API = location.pathname.replace(/\/explorer\/?$/, "");
  const SVG_NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = { dag: 1000, overview: 2000, throughput: 5000 };

  // --- small helpers ------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = String(value);
      else if (key === "onclick") el.addEventListener("click", value);
      else el.setAttribute(key, String(value));
    }
  }

  function append(el, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function link(route, text, cls) {
    return h("a", { href: "#/" + route, class: cls || "mono", text: text });
  }

  function short(text, keep) {
    const n = keep || 8;
    const value = String(text);
    return value.length <= 2 * n + 1 ? value : value.slice(0, n) + "…" + value.slice(-n);
  }

  function fmt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function ago(ms) {
    if (!ms) return "–";
    const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    return new Date(ms).toLocaleString();
  }

  function setStatus(text, isError) {
    const line = document.getElementById("status-line");
    line.textContent = text || "";
    line.classList.toggle("error", Boolean(isError));
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path) {
    let response;
    try {
      response = await fetch(API + path, { headers: { Accept: "application/json" } });
    } catch (e) {
      throw new ApiError(0, "UNREACHABLE", "the API does not answer");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const code = body && body.code ? body.code : "HTTP_" + response.status;
      const message = body && body.message ? body.message : response.statusText;
      throw new ApiError(response.status, code, message);
    }
    return body;
  }

  // Whether the node knows `id` as a `kind` (transaction, commit, object): asked through
  // the search, which answers 200 either way, so a page for something gone (a deleted
  // object, a commit not executed yet) is a message, not a failed request.
  async function known(kind, id) {
    const result = await api("/search?q=" + encodeURIComponent(id));
    return result.matches.some((m) => m.kind === kind);
  }

  function absent(title, text) {
    view().replaceChildren(
      h("h1", { text: title }),
      h("p", { class: "muted", id: "page-missing", text: text }),
      h("p", {}, link("", "Back to the overview", "")),
    );
  }

  function panel(title, ...children) {
    return h("section", { class: "panel" }, title ? h("h2", { text: title }) : null, children);
  }

  function fields(rows) {
    const dl = h("dl", { class: "fields" });
    for (const [label, value, id] of rows) {
      dl.append(h("dt", { text: label }), h("dd", { id: id || null }, value));
    }
    return dl;
  }

  function table(headers, rows, attrs) {
    const head = h("tr", {}, headers.map((c) => h("th", { class: c.endsWith("#") ? "num" : null, text: c.replace(/#$/, "") })));
    const body = rows.map((cells) => h("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c)))));
    return h("table", attrs || {}, h("thead", {}, head), h("tbody", {}, body));
  }

  function num(value) {
    return h("td", { class: "num" }, value);
  }

  function jsonBlock(title, value) {
    return h("details", {}, h("summary", { text: title }), h("pre", { class: "json", text: JSON.stringify(value, null, 2) }));
  }

  // --- the committee, for names ---------------------------------------------------------

  const committee = { epoch: null, byName: new Map(), members: [] };

  async function loadCommittee() {
    const c = await api("/committee");
    committee.epoch = c.epoch;
    committee.members = c.members;
    committee.total = c.total_stake;
    committee.byName = new Map(c.members.map((m) => [m.name, m]));
    return c;
  }

  function validatorName(name) {
    const member = committee.byName.get(name);
    return member ? member.hostname : short(name);
  }

  // --- routing -------------------------------------------------------------------------

  let generation = 0;
  const timers = new Set();

  function later(fn, ms) {
    const mine = generation;
    const id = setTimeout(() => {
      timers.delete(id);
      if (mine === generation) fn();
    }, ms);
    timers.add(id);
  }

  function view() {
    return document.getElementById("view");
  }

  async function route() {
    generation += 1;
    for (const id of timers) clearTimeout(id);
    timers.clear();
    const mine = generation;
    let hash = location.hash.replace(/^#\/?/, "");
    try {
      hash = decodeURIComponent(hash);
    } catch (e) {
      // A malformed escape (a hand-typed link): route on the text as it is.
    }
    const [page, ...rest] = hash.split("/");
    const arg = rest.join("/");
    setStatus("");
    document.body.dataset.page = page || "overview";
    try {
      if (!committee.members.length) await loadCommittee();
      if (page === "tx") await showTransaction(arg, mine);
      else if (page === "commit") await showCommit(arg, mine);
      else if (page === "object") await showObject(arg, mine);
      else if (page === "address") await showAddress(arg, mine);
      else showOverview(mine);
    } catch (e) {
      if (mine !== generation) return;
      view().replaceChildren(
        h("h1", { text: "Not available" }),
        h("p", { class: "muted", id: "page-error", text: e.code ? e.code + ": " + e.message : String(e) }),
        h("p", {}, link("", "Back to the overview", "")),
      );
    }
  }

  // --- search ----------------------------------------------------------------------------

  const ROUTES = { transaction: "tx", commit: "commit", object: "object", address: "address" };

  async function search(event) {
    event.preventDefault();
    const input = document.getElementById("search-input");
    const query = input.value.trim();
    if (!query) return;
    setStatus("Searching…");
    try {
      const result = await api("/search?q=" + encodeURIComponent(query));
      if (!result.matches.length) {
        setStatus("Nothing found for " + short(query, 20), true);
        return;
      }
      const match = result.matches[0];
      setStatus("");
      const target = "#/" + ROUTES[match.kind] + "/" + match.id;
      if (location.hash === target) route();
      else location.hash = target;
    } catch (e) {
      setStatus("Search failed: " + e.message, true);
    }
  }

  // --- the overview ------------------------------------------------------------------------

  // `loop` numbers the DAG's refresh loop: a resumed view starts a new one, and an
  // older one still waiting on an answer stops there.
  const dagState = { paused: false, rounds: 20, selected: null, last: null, loop: 0 };

  function showOverview(mine) {
    dagState.paused = false;
    dagState.loop += 1;
    const cards = h("div", { class: "cards", id: "overview-cards" });
    const committeePanel = h("div", { id: "committee" });
    const commitsPanel = h("div", { id: "latest-commits" });
    const chart = h("div", { id: "tps-chart" });
    const pause = h("button", { id: "dag-pause", type: "button", "data-paused": "false", text: "Pause" });
    pause.addEventListener("click", () => {
      dagState.paused = !dagState.paused;
      pause.textContent = dagState.paused ? "Resume" : "Pause";
      pause.dataset.paused = String(dagState.paused);
      if (!dagState.paused) {
        dagState.loop += 1;
        refreshDag(mine);
      }
    });
    const rounds = h("select", { id: "dag-rounds", "aria-label": "Rounds shown" },
      [10, 20, 30, 50].map((n) => h("option", { value: n, selected: n === dagState.rounds, text: n + " rounds" })));
    rounds.addEventListener("change", () => {
      dagState.rounds = Number(rounds.value);
      refreshDag(mine, true);
    });
    const dag = h("div", { class: "dag-scroll", id: "dag" });
    const detail = h("div", { class: "block-detail", id: "block-detail" });
    view().replaceChildren(
      h("h1", { text: "Network overview" }),
      cards,
      h("section", { class: "panel" },
        h("div", { class: "toolbar" },
          h("h2", { text: "DAG" }),
          h("span", { class: "muted", id: "dag-source" }),
          rounds,
          pause),
        dag,
        legend(),
        detail),
      h("div", { class: "grid" },
        panel("Transactions per second", chart),
        panel("Latest commits", commitsPanel)),
      panel("Committee", committeePanel),
    );
    refreshOverview(mine);
    refreshThroughput(mine);
    refreshDag(mine);
  }

  function legend() {
    const items = [
      ["block", "block"],
      ["committed-direct", "leader committed (direct)"],
      ["committed-indirect", "leader committed (indirect)"],
      ["committed-other", "leader committed (certified elsewhere)"],
      ["skipped", "leader skipped"],
      ["undecided", "leader undecided"],
    ];
    return h("div", { class: "legend", id: "dag-legend" },
      items.map(([cls, text]) => h("span", {}, h("span", { class: "swatch " + cls }), text)));
  }

  async function refreshOverview(mine) {
    try {
      const [status, commits] = await Promise.all([api("/status"), api("/commits?limit=10")]);
      if (mine !== generation) return;
      if (status.epoch !== committee.epoch) await loadCommittee();
      if (mine !== generation) return;
      renderCards(status);
      renderCommittee();
      renderCommits(commits.commits);
      setStatus("Live · updated " + new Date().toLocaleTimeString());
    } catch (e) {
      if (mine === generation) setStatus("Cannot reach the API: " + e.message, true);
    }
    later(() => refreshOverview(mine), REFRESH_MS.overview);
  }

  function card(label, value, id) {
    return h("div", { class: "card" }, h("div", { class: "label", text: label }), h("div", { class: "value", id: id, text: value }));
  }

  function renderCards(status) {
    const tps = document.getElementById("tps-value");
    document.getElementById("overview-cards").replaceChildren(
      card("Epoch", fmt(status.epoch), "epoch"),
      card("Latest commit", fmt(status.latest_commit), "latest-commit"),
      card("Certified commit", fmt(status.latest_certified_commit), "certified-commit"),
      card("Validators", fmt(committee.members.length), "validator-count"),
      card("Transactions/s", tps ? tps.textContent : "–", "tps-value"),
      card("Sync lag", fmt(status.sync_lag), "sync-lag"),
    );
  }

  function renderCommittee() {
    const rows = committee.members.map((m) => [
      m.hostname,
      num(fmt(m.stake)),
      num((m.voting_power / 100).toFixed(2) + " %"),
      h("span", { class: "mono", text: m.address }),
      link("address/" + m.account, short(m.account)),
    ]);
    document.getElementById("committee").replaceChildren(
      h("p", { class: "muted", text: "Epoch " + committee.epoch + " · total stake " + fmt(committee.total) }),
      table(["validator", "stake#", "voting power#", "service", "account"], rows, { id: "committee-table" }),
    );
  }

  function leaderText(leader) {
    if (!leader) return "–";
    const member = committee.members[leader.author];
    return (member ? member.hostname : "#" + leader.author) + " · round " + leader.round;
  }

  function renderCommits(commits) {
    const rows = commits.map((c) => [
      link("commit/" + c.index, fmt(c.index)),
      h("span", { title: new Date(c.timestamp_ms).toISOString(), text: ago(c.timestamp_ms) }),
      num(fmt(c.user_transactions)),
      leaderText(c.leader),
    ]);
    document.getElementById("latest-commits").replaceChildren(
      table(["commit", "time", "transactions#", "leader"], rows, { id: "commits-table" }),
    );
  }

  async function refreshThroughput(mine) {
    try {
      const series = await api("/throughput?window_s=300&bucket_s=10");
      if (mine !== generation) return;
      renderChart(series);
    } catch (e) {
      if (mine === generation) setStatus("Throughput unavailable: " + e.message, true);
    }
    later(() => refreshThroughput(mine), REFRESH_MS.throughput);
  }

  function renderChart(series) {
    const width = 640, height = 180, left = 44, bottom = 22, top = 10;
    const buckets = series.buckets;
    const peak = Math.max(1, ...buckets.map((b) => b.tps));
    const scale = niceCeiling(peak);
    const plotW = width - left - 8, plotH = height - top - bottom;
    const barW = plotW / Math.max(1, buckets.length);
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
      "aria-label": "Transactions per second over the last " + Math.round(buckets.length * series.bucket_ms / 60000) + " minutes",
      "data-buckets": buckets.length });
    for (const fraction of [0, 0.5, 1]) {
      const y = top + plotH * (1 - fraction);
      svg.append(s("line", { class: "axis", x1: left, x2: width - 8, y1: y, y2: y }),
        s("text", { x: left - 6, y: y + 4, "text-anchor": "end", text: fmtRate(scale * fraction) }));
    }
    buckets.forEach((b, i) => {
      const barH = plotH * b.tps / scale;
      svg.append(s("rect", { class: "bar", x: left + i * barW + 1, y: top + plotH - barH, width: Math.max(1, barW - 2), height: barH },
        s("title", { text: new Date(b.start_ms).toLocaleTimeString() + ": " + fmtRate(b.tps) + " tx/s, " + b.commits + " commits" })));
    });
    const minutes = Math.round(buckets.length * series.bucket_ms / 60000);
    svg.append(s("text", { x: left, y: height - 4, text: "−" + minutes + " min" }), s("text", { x: width - 8, y: height - 4, "text-anchor": "end", text: "now" }));
    document.getElementById("tps-chart").replaceChildren(
      svg, h("p", { class: "muted", text: "Average " + fmtRate(series.tps) + " tx/s · " + fmt(series.transactions) + " transactions" }));
    const value = document.getElementById("tps-value");
    if (value) value.textContent = fmtRate(buckets.length ? buckets[buckets.length - 1].tps : 0);
  }

  function niceCeiling(value) {
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 5, 10]) if (step * magnitude >= value) return step * magnitude;
    return 10 * magnitude;
  }

  function fmtRate(value) {
    return value >= 100 ? fmt(Math.round(value)) : Number(value).toFixed(1);
  }

  // --- the DAG view ------------------------------------------------------------------------

  async function refreshDag(mine, once) {
    const loop = dagState.loop;
    if (!dagState.paused) {
      try {
        const dag = await api("/dag?rounds=" + dagState.rounds);
        if (mine !== generation || dagState.paused) return;
        dagState.last = dag;
        renderDag(dag);
      } catch (e) {
        if (mine === generation) setStatus("DAG unavailable: " + e.message, true);
      }
    }
    if (!once && !dagState.paused && loop === dagState.loop) later(() => refreshDag(mine), REFRESH_MS.dag);
  }

  function leaderStatus(leader) {
    if (leader.status !== "committed") return leader.status;
    return "committed-" + (leader.decided || "restored");
  }

  function renderDag(dag) {
    const container = document.getElementById("dag");
    if (!container) return;
    const lanes = dag.authorities.length;
    const low = dag.low_round, high = dag.highest_round;
    const columns = Math.max(1, high - low + 1);
    const left = 96, top = 24, colW = 46, rowH = 46, right = 24;
    const width = left + columns * colW + right, height = top + lanes * rowH + 8;
    const x = (round) => left + (round - low) * colW + colW / 2;
    const laneY = (author) => top + author * rowH + rowH / 2;
    const svg = s("svg", { class: "dag", viewBox: `0 0 ${width} ${height}`, width: width, height: height,
      "data-low-round": low, "data-highest-round": high, "data-epoch": dag.epoch, role: "img",
      "aria-label": "The last " + columns + " rounds of the DAG" });
    dag.authorities.forEach((a, i) => {
      svg.append(s("line", { class: "lane", x1: left - 6, x2: width - right, y1: laneY(i), y2: laneY(i) }),
        s("text", { class: "lane-label", x: 8, y: laneY(i) + 4, text: a.hostname }));
    });
    for (let round = low; round <= high; round++) {
      if ((round - low) % 2 === 0 || columns <= 12) svg.append(s("text", { class: "round-label", x: x(round), y: 14, "text-anchor": "middle", text: round }));
    }
    // Where each block is drawn: equivocating authorities get their blocks side by side.
    const where = new Map();
    const perSlot = new Map();
    for (const b of dag.blocks) {
      const slot = b.round + ":" + b.author;
      const n = perSlot.get(slot) || 0;
      perSlot.set(slot, n + 1);
      where.set(b.digest, { x: x(b.round) + n * 8, y: laneY(b.author) + n * 8 });
    }
    const edges = s("g", { class: "edges" });
    for (const b of dag.blocks) {
      const to = where.get(b.digest);
      for (const parent of b.ancestors) {
        const from = where.get(parent.digest);
        if (!from) continue;
        edges.append(s("line", { class: "edge", x1: from.x, y1: from.y, x2: to.x, y2: to.y }));
      }
    }
    svg.append(edges);
    const leaders = new Map(dag.leaders.map((l) => [l.round + ":" + l.authority, l]));
    const drawn = new Set();
    for (const b of dag.blocks) {
      const at = where.get(b.digest);
      const leader = leaders.get(b.round + ":" + b.author);
      const committedOther = leader && leader.status === "committed" && leader.block && leader.block.digest !== b.digest;
      const status = leader && !committedOther ? leaderStatus(leader) : null;
      if (leader) drawn.add(b.round + ":" + b.author);
      const member = dag.authorities[b.author];
      const g = s("g", {
        class: "block" + (status ? " leader" : "") + (dagState.selected === b.digest ? " selected" : ""),
        "data-author": b.author, "data-round": b.round, "data-digest": b.digest,
        "data-leader-status": status, "data-commit": leader && leader.commit !== null && status ? leader.commit : null,
        tabindex: 0,
      },
      s("circle", { cx: at.x, cy: at.y, r: status ? 11 : 8 }),
      s("title", { text: (member ? member.hostname : b.author) + " · round " + b.round + "\n" + b.transactions + " transactions\n" + b.digest + (status ? "\nleader: " + status.replace("-", " ") : "") }));
      g.addEventListener("click", () => selectBlock(b, leader, status));
      svg.append(g);
    }
    // Leader slots with no block in the view (a skipped or awaited leader).
    for (const l of dag.leaders) {
      const key = l.round + ":" + l.authority;
      if (drawn.has(key) || l.round < low || l.round > high) continue;
      svg.append(s("g", { class: "slot-marker", "data-author": l.authority, "data-round": l.round, "data-leader-status": leaderStatus(l) },
        s("circle", { cx: x(l.round), cy: laneY(l.authority), r: 10 }),
        s("title", { text: "leader slot of " + (dag.authorities[l.authority] || {}).hostname + " at round " + l.round + ": " + leaderStatus(l).replace("-", " ") + " (no block here)" })));
    }
    container.replaceChildren(svg);
    container.dataset.blocks = String(dag.blocks.length);
    container.scrollLeft = container.scrollWidth;
    const source = document.getElementById("dag-source");
    if (source) source.textContent = "as seen by " + dag.validator + " · rounds " + low + "–" + high;
  }

  function selectBlock(b, leader, status) {
    dagState.selected = b.digest;
    const member = dagState.last ? dagState.last.authorities[b.author] : null;
    const parents = b.ancestors.map((a) => {
      const m = dagState.last ? dagState.last.authorities[a.author] : null;
      return (m ? m.hostname : a.author) + "@" + a.round;
    }).join(", ");
    const rows = [
      ["Author", member ? member.hostname : String(b.author)],
      ["Round", String(b.round)],
      ["Digest", h("span", { class: "mono", text: b.digest })],
      ["Time", new Date(b.timestamp_ms).toLocaleTimeString()],
      ["Transactions", fmt(b.transactions)],
      ["Parents", parents],
    ];
    if (status) rows.push(["Leader", status.replace("-", " ")]);
    if (leader && leader.commit !== null && status) rows.push(["Commit", link("commit/" + leader.commit, fmt(leader.commit))]);
    document.getElementById("block-detail").replaceChildren(fields(rows));
    if (dagState.last) renderDag(dagState.last);
  }

  // --- a transaction --------------------------------------------------------------------------

  function inputRow(input) {
    if (input.type === "ImmOrOwnedInput") {
      const ref = input.object_ref;
      return ["owned", link("object/" + ref.object_id, short(ref.object_id, 10)), num(fmt(ref.version)), h("span", { class: "mono", text: short(ref.digest) })];
    }
    return ["shared" + (input.mutable ? " (mutable)" : ""), link("object/" + input.object_id, short(input.object_id, 10)), num("from " + fmt(input.initial_shared_version)), "–"];
  }

  function refRows(refs) {
    return refs.map((r) => [link("object/" + r.object_id, short(r.object_id, 10)), num(fmt(r.version))]);
  }

  // The fields of a transaction's kind (amount, recipient, coins...), linked where they
  // name an address or an object.
  function kindRows(kind) {
    const rows = [];
    for (const [key, value] of Object.entries(kind)) {
      if (key === "type" || value === null) continue;
      const label = key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
      rows.push([label, kindValue(key, value)]);
    }
    return rows;
  }

  function kindValue(key, value) {
    if (Array.isArray(value)) {
      const items = value.map((v) => kindValue(key, v));
      return items.length ? h("span", {}, items.flatMap((item, i) => (i ? [", ", item] : [item]))) : "none";
    }
    if (value && typeof value === "object" && value.object_id) return link("object/" + value.object_id, short(value.object_id, 10));
    if (typeof value === "string" && /^0x[0-9a-f]{64}$/.test(value)) {
      return /recipient|address|owner/.test(key) ? link("address/" + value, short(value, 10)) : link("object/" + value, short(value, 10));
    }
    if (typeof value === "number") return fmt(value);
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  async function showTransaction(digest, mine) {
    if (!(await known("transaction", digest))) {
      if (mine === generation) absent("Transaction " + short(digest, 12), "This node does not know this transaction.");
      return;
    }
    const tx = await api("/transactions/" + encodeURIComponent(digest) + "/details");
    if (mine !== generation) return;
    const effects = tx.effects;
    const signers = tx.signers.map((n) => validatorName(n)).join(", ") || "none yet";
    const certified = tx.certificate
      ? "certified: " + fmt(tx.signed_stake) + " of " + fmt(tx.total_stake) + " stake signed these effects"
      : "not certified: " + fmt(tx.signed_stake) + " of " + fmt(tx.total_stake) + " stake signed";
    const kind = tx.transaction.kind || {};
    const parts = [
      h("h1", {}, "Transaction ", h("span", { class: "mono", id: "tx-digest", text: tx.digest })),
      panel(null, fields([
        ["Status", h("span", { class: "badge " + tx.status, "data-status": tx.status, text: tx.status }), "tx-status"],
        ["Fee", tx.fee === null ? "–" : fmt(tx.fee), "tx-fee"],
        ["Kind", kind.type || "–"],
        ...kindRows(kind),
        ["Sender", link("address/" + tx.sender, tx.sender), "tx-sender"],
        ["Gas budget", fmt(tx.transaction.gas_budget)],
        ["Executed in epoch", effects ? fmt(effects.executed_epoch) : "–"],
        ["Error", effects && effects.error ? JSON.stringify(effects.error) : null],
        ["Effects signed by", signers, "tx-signers"],
        ["Certificate", certified, "tx-certificate"],
      ].filter((row) => row[1] !== null))),
      h("div", { class: "grid" },
        panel("Inputs", table(["kind", "object", "version#", "digest"], tx.inputs.map(inputRow), { id: "tx-inputs" })),
        effects ? panel("Effects", h("div", { id: "tx-effects" },
          h("p", { class: "muted", text: "Effects digest " + effects.digest }),
          h("h3", { text: "Created" }), effects.created.length ? table(["object", "version#"], refRows(effects.created)) : h("p", { class: "muted", text: "none" }),
          h("h3", { text: "Mutated" }), effects.mutated.length ? table(["object", "version#"], refRows(effects.mutated)) : h("p", { class: "muted", text: "none" }),
          h("h3", { text: "Deleted" }), effects.deleted.length ? table(["object"], effects.deleted.map((id) => [link("object/" + id, short(id, 10))])) : h("p", { class: "muted", text: "none" }),
          h("p", {}, "Gas object: ", effects.gas_object ? link("object/" + effects.gas_object.object_id, short(effects.gas_object.object_id, 10)) : "–"),
        )) : panel("Effects", h("p", { class: "muted", id: "tx-effects", text: "Not executed by this node yet." })),
      ),
      jsonBlock("Transaction data (JSON)", tx.transaction),
    ];
    if (effects) parts.push(jsonBlock("Effects (JSON)", effects));
    view().replaceChildren(...parts);
  }

  // --- a commit --------------------------------------------------------------------------------

  async function showCommit(index, mine) {
    if (!/^\d{1,20}$/.test(index) || !(await known("commit", index))) {
      if (mine === generation) absent("Commit " + short(index, 12), "This node has not executed this commit (yet).");
      return;
    }
    const [c, status] = await Promise.all([api("/commits/" + encodeURIComponent(index)), api("/status")]);
    if (mine !== generation) return;
    const name = (author) => {
      const m = committee.members[author];
      return m ? m.hostname : "#" + author;
    };
    const signers = c.signers.map((n) => validatorName(n)).join(", ");
    view().replaceChildren(
      h("h1", { text: "Commit " + fmt(c.index) }),
      panel(null, fields([
        ["Epoch", fmt(c.epoch)],
        ["Time", c.timestamp_ms ? new Date(c.timestamp_ms).toLocaleString() + " (" + ago(c.timestamp_ms) + ")" : "– (its leader's parents are the genesis blocks)"],
        ["Leader", c.leader ? name(c.leader.author) + " · round " + c.leader.round + " · " + short(c.leader.digest) : "not held by any validator any more", "commit-leader"],
        ["User transactions", fmt(c.user_transactions)],
        ["Certified summary", c.certified ? "signed by " + signers : "not certified yet"],
      ]),
      h("div", { class: "pager" },
        c.index > 0 ? link("commit/" + (c.index - 1), "← commit " + fmt(c.index - 1), "") : null,
        c.index < status.latest_commit ? link("commit/" + (c.index + 1), "commit " + fmt(c.index + 1) + " →", "") : null)),
      h("div", { class: "grid" },
        panel("Transactions (" + c.transactions.length + ", in execution order)",
          c.transactions.length ? table(["#", "digest"], c.transactions.map((d, i) => [String(i), link("tx/" + d, d)]), { id: "commit-transactions" }) : h("p", { class: "muted", text: "none" })),
        panel("Blocks" + (c.blocks ? " (" + c.blocks.length + ")" : ""),
          c.blocks ? table(["author", "round#", "digest"], c.blocks.map((b) => [name(b.author), num(b.round), h("span", { class: "mono", text: short(b.digest) })]), { id: "commit-blocks" })
            : h("p", { class: "muted", text: "The consensus commit is no longer held by the validators." }))),
    );
  }

  // --- an object -------------------------------------------------------------------------------

  function ownerView(owner) {
    if (!owner) return "–";
    if (owner.type === "AddressOwner") return link("address/" + owner.address, owner.address);
    if (owner.type === "Shared") return "shared (since version " + fmt(owner.initial_shared_version) + ")";
    return owner.type;
  }

  async function showObject(id, mine) {
    if (!(await known("object", id))) {
      if (mine === generation) absent("Object " + short(id, 12), "No live object has this ID: it was deleted, or never existed.");
      return;
    }
    const o = await api("/objects/" + encodeURIComponent(id));
    if (mine !== generation) return;
    const rows = [
      ["Type", o.object_type],
      ["Owner", ownerView(o.owner), "object-owner"],
      ["Version", fmt(o.version), "object-version"],
      ["Digest", h("span", { class: "mono", text: o.digest })],
      ["Previous transaction", link("tx/" + o.previous_transaction, o.previous_transaction), "object-previous"],
    ];
    if (o.balance !== null && o.balance !== undefined) rows.push(["Balance", fmt(o.balance), "object-balance"]);
    view().replaceChildren(
      h("h1", {}, "Object ", h("span", { class: "mono", text: o.id })),
      panel(null, fields(rows)),
      jsonBlock("Contents (JSON)", o.data),
    );
  }

  // --- an address ------------------------------------------------------------------------------

  async function showAddress(address, mine, cursor) {
    const query = "?limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    const [balance, page] = await Promise.all([
      api("/addresses/" + encodeURIComponent(address) + "/balance"),
      api("/addresses/" + encodeURIComponent(address) + "/objects" + query),
    ]);
    if (mine !== generation) return;
    const more = page.next_cursor
      ? h("button", { type: "button", id: "objects-next", text: "Next page", onclick: () => showAddress(address, mine, page.next_cursor).catch((e) => setStatus(e.message, true)) })
      : null;
    view().replaceChildren(
      h("h1", {}, "Address ", h("span", { class: "mono", text: balance.address })),
      panel(null, fields([
        ["Balance", fmt(balance.balance), "address-balance"],
        ["Coins", fmt(balance.coins)],
      ])),
      panel("Owned objects",
        page.objects.length ? table(["object", "version#", "digest"], page.objects.map((r) => [link("object/" + r.object_id, r.object_id), num(fmt(r.version)), h("span", { class: "mono", text: short(r.digest) })]), { id: "address-objects" })
          : h("p", { class: "muted", text: "none" }),
        h("div", { class: "pager" }, more)),
    );
  }

  // --- start ------------------------------------------------------------------------------------

  document.getElementById("search").addEventListener("submit", search);
  window.addEventListener("hashchange", route);
  route();
})();
