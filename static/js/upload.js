// Photo page: each chosen or dropped photo is posted to /api/detect, in the order chosen; the photo is shown with
// numbered boxes and labels laid out for its displayed size, linked both ways to the list of faces under it.
import { detect } from "./api.js";
import { describe, labelText, placeLabels, summary } from "./faces.js";

const form = document.getElementById("upload-form");
const input = document.getElementById("file-input");
const status = document.getElementById("status");
const results = document.getElementById("results");
const template = document.getElementById("result-template");
const maxBytes = Number(form.dataset.maxBytes);
const ACCEPTED = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"];
// Browsers that cannot show HEIC often leave its type empty: the name tells.
const accepted = (file) => ACCEPTED.includes(file.type) || /\.hei[cf]$/i.test(file.name);
const BOX_LINE = 2; // CSS pixels, as .mark's border in app.css

// The browser shows the chosen file itself (upright by its EXIF, like the server's boxes); a photo it cannot show
// (HEIC outside Safari) is shown as the server's annotated image, whose numbers and labels are drawn in.
function showPhoto(img, file, annotatedUrl) {
  return new Promise((resolve) => {
    const own = URL.createObjectURL(file);
    img.onload = () => resolve(true);
    img.onerror = () => {
      URL.revokeObjectURL(own);
      img.onload = () => resolve(false);
      img.onerror = () => resolve(false);
      img.src = annotatedUrl;
    };
    img.src = own;
  });
}

// One card's photo, boxes, labels and list, and the links between them.
function showFaces(card, result, ownPhoto) {
  const frame = card.querySelector(".photo-frame");
  const img = card.querySelector(".result-image");
  const marks = card.querySelector(".marks");
  const list = card.querySelector(".faces");
  const crowded = card.querySelector(".crowded");
  frame.classList.toggle("server-drawn", !ownPhoto);
  const entries = result.faces.map((face, i) => {
    const number = i + 1;
    const words = `Face ${number}: ${describe(face)}`;
    const mark = document.createElement("button");
    mark.type = "button";
    mark.className = `mark ${face.label}`;
    mark.setAttribute("aria-label", words);
    mark.dataset.face = String(number);
    mark.style.left = `${(face.box.x / result.width) * 100}%`;
    mark.style.top = `${(face.box.y / result.height) * 100}%`;
    mark.style.width = `${(face.box.w / result.width) * 100}%`;
    mark.style.height = `${(face.box.h / result.height) * 100}%`;
    const tag = document.createElement("span");
    tag.className = `tag ${face.label}`;
    tag.setAttribute("aria-hidden", "true");
    tag.dataset.face = String(number);
    const item = document.createElement("li");
    item.className = face.label;
    const line = document.createElement("button");
    line.type = "button";
    line.className = "face-line";
    line.dataset.face = String(number);
    line.textContent = words;
    item.append(line);
    marks.append(mark, tag);
    list.append(item);
    return { face, number, mark, tag, item, line, full: labelText(number, face), short: String(number) };
  });

  let selected = null;
  const highlight = (entry, on, kind) => {
    for (const el of [entry.mark, entry.tag, entry.item]) el.classList.toggle(kind, on);
    entry.tag.textContent = on || entry.placedFull ? entry.full : entry.short;
  };
  const select = (entry, from) => {
    if (selected) highlight(selected, false, "selected");
    selected = selected === entry ? null : entry;
    if (!selected) return layout();
    highlight(entry, true, "selected");
    (from === "list" ? entry.mark : entry.item).scrollIntoView({ block: "nearest", inline: "nearest" });
  };
  for (const entry of entries) {
    for (const el of [entry.mark, entry.line]) {
      el.addEventListener("mouseenter", () => highlight(entry, true, "hover"));
      el.addEventListener("mouseleave", () => highlight(entry, false, "hover"));
      el.addEventListener("focus", () => highlight(entry, true, "hover"));
      el.addEventListener("blur", () => highlight(entry, false, "hover"));
    }
    entry.mark.addEventListener("click", () => select(entry, "photo"));
    entry.line.addEventListener("click", () => select(entry, "list"));
  }

  // Labels are laid out in display pixels, at a size that follows the displayed photo (within readable bounds).
  function layout() {
    const width = img.clientWidth;
    const height = img.clientHeight;
    if (!width || !height) return;
    const fontPx = Math.min(18, Math.max(12, Math.max(width, height) * 0.02));
    marks.style.setProperty("--tag-font", `${fontPx}px`);
    const scale = width / result.width;
    const boxes = entries.map(({ face }) => ({ x: face.box.x * scale, y: face.box.y * scale, w: face.box.w * scale, h: face.box.h * scale }));
    const measure = (text, tag) => {
      tag.textContent = text;
      return { w: tag.offsetWidth, h: tag.offsetHeight };
    };
    const full = entries.map((e) => measure(e.full, e.tag));
    const short = entries.map((e) => measure(e.short, e.tag));
    let unplaced = 0;
    placeLabels({ width, height }, boxes, full, short, BOX_LINE).forEach(({ rect, full: isFull }, i) => {
      const entry = entries[i];
      entry.placedFull = isFull;
      entry.tag.textContent = isFull || entry === selected ? entry.full : entry.short;
      entry.tag.classList.toggle("unplaced", !rect);
      if (!rect) unplaced += 1;
      // A label with no room of its own shows, on hover or selection, just under its box.
      const at = rect || { x: Math.min(boxes[i].x, width - short[i].w), y: Math.min(boxes[i].y + boxes[i].h, height - short[i].h) };
      entry.tag.style.left = `${Math.max(0, at.x)}px`;
      entry.tag.style.top = `${Math.max(0, at.y)}px`;
    });
    crowded.hidden = unplaced === 0;
    crowded.textContent = `${unplaced} of the numbers need more room: “View larger” shows them, or tap a box.`;
    marks.dataset.laidOut = String(entries.length - unplaced);
  }
  new ResizeObserver(layout).observe(img);
  layout();

  const zoom = card.querySelector(".zoom");
  zoom.addEventListener("click", () => {
    const larger = !frame.classList.contains("zoomed");
    frame.classList.toggle("zoomed", larger);
    zoom.setAttribute("aria-pressed", String(larger));
    zoom.textContent = larger ? "Fit to page" : "View larger";
  });
}

function newCard(file) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.querySelector(".result-name").textContent = file.name;
  card.querySelector(".summary").textContent = "Waiting…";
  results.append(card);
  return card;
}

// Fills `card` with the answer for `file`; true when the photo was analysed.
async function analyse(file, card) {
  const summaryLine = card.querySelector(".summary");
  summaryLine.textContent = "Analysing…";
  try {
    if (!accepted(file)) throw new Error("This file type is not supported; choose a JPEG, PNG, WebP or HEIC photo.");
    if (file.size > maxBytes) throw new Error(`This file is larger than ${maxBytes / 1048576} MB.`);
    const result = await detect(file.type ? file : file.slice(0, file.size, "image/heic"), { annotate: true });
    const annotatedUrl = `data:image/jpeg;base64,${result.annotated_image}`;
    const image = card.querySelector(".result-image");
    image.alt = `${file.name}: ${summary(result.faces)}`;
    card.querySelector(".photo-frame").hidden = false;
    const ownPhoto = await showPhoto(image, file, annotatedUrl);
    summaryLine.textContent = summary(result.faces);
    showFaces(card, result, ownPhoto);
    card.querySelector(".photo-tools").hidden = false;
    const download = card.querySelector(".download");
    download.href = annotatedUrl;
    download.download = file.name.replace(/\.[^.]+$/, "") + "-annotated.jpg";
    download.hidden = false;
    card.classList.add(result.faces.length ? "has-faces" : "no-faces");
    return true;
  } catch (error) {
    card.querySelector(".photo-frame").hidden = true;
    summaryLine.textContent = error.message;
    card.classList.add("error");
    return false;
  }
}

const photos = (n) => `${n} photo${n === 1 ? "" : "s"}`;

async function analyseAll(files) {
  const list = [...files];
  if (!list.length) return;
  status.textContent = `Analysing ${photos(list.length)}…`;
  const cards = list.map(newCard);
  let failed = 0;
  for (const [i, file] of list.entries()) {
    if (!(await analyse(file, cards[i]))) failed += 1;
  }
  status.textContent = failed
    ? `Done: ${list.length - failed} of ${photos(list.length)} analysed, ${failed} failed.`
    : `Done: ${photos(list.length)} analysed.`;
}

input.addEventListener("change", () => {
  analyseAll(input.files);
  input.value = "";
});
form.addEventListener("submit", (event) => event.preventDefault());
for (const name of ["dragenter", "dragover"]) {
  form.addEventListener(name, (event) => {
    event.preventDefault();
    form.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  form.addEventListener(name, () => form.classList.remove("dragging"));
}
form.addEventListener("drop", (event) => {
  event.preventDefault();
  analyseAll(event.dataTransfer.files);
});
