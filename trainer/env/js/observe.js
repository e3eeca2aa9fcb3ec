// WebRL's simplified HTML (webrl-spec.md §7.2) in one pass: measure, find clickables, number them,
// serialise the viewport tree on one line. Only data-label-id is written to the live DOM.
(opts) => {
  const KEPT = ["title", "value", "type", "placeholder", "selected", "data-value", "data-text",
    "data-testid", "data-label", "data-bbox", "data-status"];
  const EXTRA = ["aria-label", "name", "id", "href", "role"];
  const CLICKABLE_ROLES = ["button", "tab", "link", "checkbox", "menuitem", "menuitemcheckbox",
    "menuitemradio", "radio"];
  const CLICKABLE_TAGS = ["input", "textarea", "select", "button", "a", "iframe", "video", "object",
    "embed", "details"];
  const DROPPED = { script: 1, style: 1 };
  const TEXT_CAP = (opts && opts.textCap) || 500;
  const vw = Math.max(document.documentElement.clientWidth || 0, window.innerWidth || 0);
  const vh = Math.max(document.documentElement.clientHeight || 0, window.innerHeight || 0);
  const ww = window.innerWidth, wh = window.innerHeight;

  const squash = (s) => s.replace(/[\t\n\f\r ]+/g, " ");
  const clean = (s) => squash(s).trim().slice(0, TEXT_CAP);

  for (const el of document.querySelectorAll("[data-label-id]")) el.removeAttribute("data-label-id");

  // Count clicks that will open a tab, so the executor knows to wait for the new page.
  if (!window.__webrlHooked) {
    window.__webrlHooked = true;
    window.__webrlPopups = 0;
    const open = window.open;
    window.open = function (...args) { window.__webrlPopups++; return open.apply(this, args); };
    document.addEventListener("click", (e) => {
      const a = e.target && e.target.closest ? e.target.closest("a[target], area[target]") : null;
      if (a && !["", "_self", "_top", "_parent"].includes(a.target)) window.__webrlPopups++;
    }, true);
  }

  // 1. Marks: bbox (first client rect, rounded), own text, values and statuses, kept virtually.
  const all = Array.from(document.querySelectorAll("*"));
  const info = new Map();
  const selectedOptions = new Set();
  for (const el of all) {
    const tag = (el.tagName || "").toLowerCase();
    const m = { tag, rect: null, marks: {} };
    const rects = el.getClientRects();
    if (rects.length > 0) {
      const r = rects[0];
      const l = Math.round(r.left), t = Math.round(r.top);
      m.rect = [l, t, Math.round(r.right) - l, Math.round(r.bottom) - t];
      m.marks["data-bbox"] = m.rect.join(",");
      m.box = rects.length > 1 ? el.getBoundingClientRect() : r;
    }
    if (el.hasChildNodes()) {
      const texts = [];
      for (const n of el.childNodes) {
        if (n.nodeType === 3) {
          const s = n.textContent.trim().replace(/\s{2,}/g, " ");
          if (s) texts.push(s);
        }
      }
      m.marks["data-text"] = texts.join(",");
    }
    if (tag === "select") {
      const opt = el.options[el.selectedIndex];
      m.marks["data-value"] = el.value;
      m.marks["data-text"] = opt ? opt.text : "";
      if (opt) selectedOptions.add(opt);
    }
    if (tag === "option" && selectedOptions.has(el)) m.marks["data-status"] = "selected";
    if (tag === "input" && (el.getAttribute("type") || "") === "checkbox") {
      m.marks["data-status"] = el.checked ? "checked" : "not-checked";
    }
    if (tag === "input" || tag === "textarea") m.marks["data-value"] = el.value;
    info.set(el, m);
  }

  // 2. Clickables: a clickable signal plus >= 1 px^2 of viewport area whose centre hits the element.
  const isClickable = (el, tag) => {
    if (el.onclick != null || window.getComputedStyle(el).cursor === "pointer") return true;
    if (tag === "img" && el.getAttribute("usemap")) {
      const name = el.getAttribute("usemap").replace(/^#/, "");
      if (document.querySelector(`map[name="${CSS.escape(name)}"]`) && el.getClientRects().length) return true;
    }
    const role = el.getAttribute("role");
    if (role != null && CLICKABLE_ROLES.includes(role.toLowerCase())) return true;
    const ce = el.getAttribute("contenteditable");
    if (ce != null && ["", "contenteditable", "true"].includes(ce.toLowerCase())) return true;
    if (el.hasAttribute("jsaction")) {
      for (const rule of el.getAttribute("jsaction").split(";")) {
        const parts = rule.trim().split(":");
        if (parts.length < 1 || parts.length > 2) continue;
        const ev = parts.length === 1 ? "click" : parts[0];
        const target = (parts.length === 1 ? parts[0] : parts[1]).trim().split(".");
        if (ev === "click" && target[0] !== "none" && target.length > 1) return true;
      }
    }
    if (CLICKABLE_TAGS.includes(tag)) return true;
    if (tag === "label") return el.control != null && !el.control.disabled;
    if (tag === "img" && ["zoom-in", "zoom-out"].includes(el.style.cursor)) return true;
    const cls = el.getAttribute("class");
    if (cls && cls.toLowerCase().includes("button")) return true;
    const tab = parseInt(el.getAttribute("tabindex") || "", 10);
    return !isNaN(tab) && tab >= 0;
  };
  const hitArea = (el) => {
    let area = 0;
    for (const bb of el.getClientRects()) {
      const hit = document.elementFromPoint(bb.left + bb.width / 2, bb.top + bb.height / 2);
      if (!hit || !(hit === el || el.contains(hit))) continue;
      const w = Math.min(vw, bb.right) - Math.max(0, bb.left);
      const h = Math.min(vh, bb.bottom) - Math.max(0, bb.top);
      area += w * h;
    }
    return area;
  };
  const candidates = [];
  for (const el of all) {
    const m = info.get(el);
    if (!m.rect || DROPPED[m.tag]) continue;
    const b = m.box;  // nothing outside the viewport can have >= 1 px^2 of hit area: skip it early
    if (b.right <= 0 || b.left >= vw || b.bottom <= 0 || b.top >= vh) continue;
    if (isClickable(el, m.tag) && hitArea(el) >= 1) candidates.push(el);
  }
  // Innermost only: drop a candidate that contains a later one (document order puts descendants after).
  const labelled = candidates.filter((el, i) => !(i + 1 < candidates.length && el.contains(candidates[i + 1])));

  // 3. Numbering in document order; kept only with a non-empty clipped rect.
  const elements = {};
  let nextId = 0;
  for (const el of labelled) {
    const r = el.getClientRects()[0];
    const w = Math.min(vw, r.right) - Math.max(0, r.left);
    const h = Math.min(vh, r.bottom) - Math.max(0, r.top);
    if (!(w > 0 || h > 0)) continue;
    const id = String(nextId++);
    el.setAttribute("data-label-id", id);
    const m = info.get(el);
    m.label = id;
    const attrs = {};
    for (const k of KEPT.concat(EXTRA)) {
      if (k === "data-bbox") continue;
      const v = k in m.marks ? m.marks[k] : el.getAttribute(k);
      if (v != null && String(v).trim() !== "") attrs[k] = clean(String(v));
    }
    elements[id] = {
      tag: m.tag,
      bbox: m.rect,
      text: clean(el.innerText != null ? el.innerText : el.textContent || ""),
      attrs,
    };
  }

  // 4. Serialise: keep visible (or labelled, or options of a kept select) nodes with something to say.
  const visible = (el, m) => {
    if (el.getAttribute("aria-hidden") === "true" || !m.rect) return false;
    const [x, y, w, h] = m.rect;
    return !(x + w < 0 || x > ww || y + h < 0 || y > wh);
  };
  const ownText = (el) => {
    let s = "";
    for (const n of el.childNodes) {
      if (n.nodeType === 1) {
        if (!DROPPED[(n.tagName || "").toLowerCase()]) break;
        continue;
      }
      if (n.nodeType === 3) s += n.textContent;
    }
    return clean(s);
  };
  const walk = (el, parentKeep) => {
    const m = info.get(el);
    const tag = m.tag;
    const label = m.label || "";
    const vis = visible(el, m);
    const optionOfKept = parentKeep && tag === "option";
    let keep = vis || optionOfKept || label !== "";
    const haveLabel = label !== "" && vis;
    const text = ownText(el);
    const attrs = [];
    let nonBox = 0;
    for (const k of KEPT) {
      let v = k in m.marks ? m.marks[k] : el.getAttribute(k);
      if (v == null) continue;
      if (k === "type" && v === "hidden") continue;
      v = clean(String(v));
      if (!v) continue;
      attrs.push([k, v]);
      if (k !== "data-bbox") nonBox++;
    }
    const haveText = text.length > 0 || nonBox > 0;
    const childKeep = keep && tag === "select";
    const parts = [];
    let meaningful = 0;
    for (const c of el.children) {
      if (DROPPED[(c.tagName || "").toLowerCase()]) continue;
      const [s, says] = walk(c, childKeep);
      if (says) meaningful++;
      if (s) parts.push(s);
    }
    const sub = parts.join(" ");
    keep = keep && (meaningful > 1 || haveText || haveLabel);
    let out = sub;
    if (keep) {
      const seen = new Set();
      const kv = [];
      for (const [k, v] of attrs) {
        if (seen.has(v)) continue;
        seen.add(v);
        kv.push(`${k}="${v}"`);
      }
      out = "<" + tag + (label ? ` id="${label}"` : "") + (kv.length ? " " + kv.join(" ") : "") + ">" +
        (text ? " " + text : "") + (sub ? " " + sub : "") + " </" + tag + ">";
    }
    return [out, meaningful > 0 || haveText];
  };
  const html = walk(document.documentElement, false)[0];
  const popups = window.__webrlPopups || 0;
  window.__webrlPopups = 0;
  return { html, elements, url: location.href, title: document.title, popups };
}
