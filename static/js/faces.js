// Words and drawings for a list of faces, shared by the photo and webcam pages.

export const COLOURS = { with_mask: "#2e7d32", without_mask: "#c62828" };
export const LABELS = { with_mask: "Mask", without_mask: "No mask" };

// `noFace` is what to say when nothing was found: the photo and webcam pages give different advice.
export function summary(faces, noFace = "No face found. Try a photo where faces are larger or better lit.") {
  if (faces.length === 0) return noFace;
  const bare = faces.filter((f) => f.label === "without_mask").length;
  const noun = faces.length === 1 ? "face" : "faces";
  return `${faces.length} ${noun}: ${bare} without a mask, ${faces.length - bare} with`;
}

// The label drawn by face `number`: the same words as model/annotate.py's.
export function labelText(number, face) {
  return `${number} ${LABELS[face.label]} ${Math.round(face.confidence * 100)}%`;
}

const overlaps = (a, b, by = 0) => a.x < b.x + b.w - by && b.x < a.x + a.w - by && a.y < b.y + b.h - by && b.y < a.y + a.h - by;

// Above, below, left and right of the box, shifted sideways to stay inside the picture.
function candidates(box, w, h, width, height) {
  const middle = box.x + (box.w - w) / 2;
  const spots = [[box.x, box.y - h], [box.x, box.y + box.h], [box.x + box.w - w, box.y - h], [box.x + box.w - w, box.y + box.h],
    [middle, box.y - h], [middle, box.y + box.h], [box.x - w, box.y], [box.x + box.w, box.y],
    [box.x - w, box.y + box.h - h], [box.x + box.w, box.y + box.h - h]];
  const rects = [];
  for (const [x, y] of spots) {
    const left = Math.min(Math.max(0, x), width - w);
    if (y >= 0 && y <= height - h && left >= 0) rects.push({ x: left, y, w, h });
  }
  return rects;
}

// model/annotate.py's place_labels: for each box (in display pixels), where its label goes and whether it is the
// whole label (`full` sizes) or the number alone (`short` sizes); the number goes inside its own box where
// nothing else fits and it does, and nowhere (rect null: shown on hover or selection, or in a larger view) where
// it does not. Labels never cover another face's box (kept `line` pixels clear) or another label.
export function placeLabels({ width, height }, boxes, full, short, line) {
  const grown = boxes.map((b) => ({ x: b.x - line, y: b.y - line, w: b.w + 2 * line, h: b.h + 2 * line }));
  const placed = [];
  return boxes.map((box, i) => {
    // A box over this face's own (a face detected inside another's) cannot be kept clear and is not;
    // boxes that only touch (to rounding) are kept clear.
    const blocked = grown.filter((_, j) => j !== i && !overlaps(boxes[j], box, 0.5)).concat(placed);
    for (const [size, isFull] of [[full[i], true], [short[i], false]]) {
      const rect = candidates(box, size.w, size.h, width, height).find((r) => !blocked.some((b) => overlaps(r, b)));
      if (rect) {
        placed.push(rect);
        return { rect, full: isFull };
      }
    }
    const inside = { x: box.x + line, y: box.y + line, w: short[i].w, h: short[i].h };
    const fits = inside.w <= box.w - 2 * line && inside.h <= box.h - 2 * line && !blocked.some((b) => overlaps(inside, b));
    if (fits) placed.push(inside);
    return { rect: fits ? inside : null, full: false };
  });
}
export function describe(face) {
  return `${LABELS[face.label]} (${Math.round(face.confidence * 100)}% confident)`;
}

// Draws the boxes of a frame of size (width, height) onto a canvas that shows it scaled by `scale`
// and shifted by (offsetX, offsetY) CSS pixels.
export function drawFaces(ctx, faces, { scale = 1, offsetX = 0, offsetY = 0 } = {}) {
  ctx.lineWidth = 3;
  ctx.font = "bold 15px system-ui, sans-serif";
  ctx.textBaseline = "top";
  for (const face of faces) {
    const x = offsetX + face.box.x * scale;
    const y = offsetY + face.box.y * scale;
    const text = `${LABELS[face.label]} ${Math.round(face.confidence * 100)}%`;
    ctx.strokeStyle = ctx.fillStyle = COLOURS[face.label];
    ctx.strokeRect(x, y, face.box.w * scale, face.box.h * scale);
    const labelY = y >= 22 ? y - 22 : y;
    ctx.fillRect(x, labelY, ctx.measureText(text).width + 10, 22);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x + 5, labelY + 4);
  }
}
