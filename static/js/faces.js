// Words and drawings for a list of faces, shared by the photo and webcam pages.

export const COLOURS = { with_mask: "#2e7d32", without_mask: "#c62828" };
export const LABELS = { with_mask: "Mask", without_mask: "No mask" };

// `noFace` is what to say when nothing was found: the photo and webcam pages give different advice.
export function summary(faces, noFace = "No face found. Try a photo where faces are larger or better lit.") {
  if (faces.length === 0) return noFace;
  const masked = faces.filter((f) => f.label === "with_mask").length;
  const noun = faces.length === 1 ? "face" : "faces";
  return `${faces.length} ${noun}: ${masked} with mask, ${faces.length - masked} without`;
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
