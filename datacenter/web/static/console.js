// The console's little JavaScript: every page works without it.
// Upload: drag and drop onto the drop zone, and a preview before sending.
// Grid: edited cells are marked, Enter moves down, leaving unsaved edits asks.
// Discarding rows and removing an account ask first.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function textCell(tag, text) {
  const cell = document.createElement(tag);
  cell.textContent = text; // never innerHTML: cells are data, not markup
  return cell;
}

function showPreview(box, data) {
  box.replaceChildren();
  if (data.error || data.problem) {
    const p = textCell("p", data.error || data.problem);
    p.className = "problem";
    p.id = "preview-problem";
    box.append(p);
    // Refused before its rows were read (the name, the bytes): no summary to show.
    if (data.error || !(data.header && data.header.length)) return;
  }
  const about = textCell("p", `${data.name}: processor ${data.processor || "?"}, mode ${data.mode}` +
    `${data.guessed ? " (guessed from the name)" : ""}, ${data.total_rows} row(s)`);
  about.id = "preview-summary";
  box.append(about);
  if (data.warnings && data.warnings.length) {
    const list = document.createElement("ul");
    list.id = "preview-warnings";
    list.className = "preview-warnings";
    for (const warning of data.warnings) list.append(textCell("li", warning));
    box.append(list);
  }
  if (data.header && data.header.length) {
    const table = document.createElement("table");
    table.id = "preview-table";
    const head = document.createElement("tr");
    for (const column of data.header) head.append(textCell("th", column));
    table.append(head);
    for (const row of data.rows) {
      const tr = document.createElement("tr");
      for (const cell of row) tr.append(textCell("td", cell));
      table.append(tr);
    }
    box.append(table);
  }
}

let previewsAsked = 0;

async function preview(form) {
  const box = document.getElementById("upload-preview");
  const input = document.getElementById("upload-file");
  if (!box || !input || !input.files.length) return;
  const body = new FormData(form);
  const asked = ++previewsAsked;
  box.textContent = "Reading…";
  try {
    const answer = await fetch("/api/uploads/preview", {
      method: "POST", body, headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin",
    });
    const data = await answer.json();
    // Another file or choice was asked for meanwhile: its preview is the one to show.
    if (asked === previewsAsked) showPreview(box, data);
  } catch (problem) {
    if (asked === previewsAsked) box.textContent = `No preview: ${problem}`;
  }
}

function setUpUpload() {
  const form = document.getElementById("upload-form");
  const zone = document.getElementById("drop-zone");
  const input = document.getElementById("upload-file");
  if (!form || !zone || !input) return;
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  // A file dropped beside the zone would have the browser open it instead of this page.
  for (const name of ["dragover", "drop"]) {
    document.addEventListener(name, (event) => event.preventDefault());
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      preview(form);
    }
  });
  input.addEventListener("change", () => preview(form));
  for (const id of ["upload-processor", "upload-mode"]) {
    const select = document.getElementById(id);
    if (select) select.addEventListener("change", () => preview(form));
  }
}

function setUpGrid() {
  const form = document.getElementById("grid-form");
  if (!form) return;
  for (const cell of form.querySelectorAll("#pending-grid .cell")) {
    const original = cell.value;
    cell.addEventListener("input", () => cell.classList.toggle("cell-edited", cell.value !== original));
    // Enter moves to the cell below (Shift+Enter above), as in a spreadsheet: it would
    // otherwise send the form, saving a half-fixed page. The Save button saves.
    cell.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || cell.tagName === "TEXTAREA") return; // there: a line break
      event.preventDefault();
      const [, row, column] = cell.id.split("-");
      const below = document.getElementById(`cell-${Number(row) + (event.shiftKey ? -1 : 1)}-${column}`);
      if (below) below.focus();
    });
  }
  // Leaving with edits not saved asks first; saving them or discarding the rows does not
  // (a discard asked already). Listened at the window: after the discard's own question.
  let saving = false;
  window.addEventListener("submit", (event) => {
    if (!event.defaultPrevented && [form.id, "discard-form"].includes(event.target.id)) saving = true;
  });
  window.addEventListener("beforeunload", (event) => {
    if (!saving && form.querySelector(".cell-edited")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
}

// A form that cannot be undone (discard rows, remove an account) asks first.
function setUpConfirms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { setUpUpload(); setUpGrid(); setUpConfirms(); });
