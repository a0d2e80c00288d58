"""The tiled HEIC fixtures (README.md): pillow-heif 1.8.1 (libheif 1.23 with x265), from the repository root:
python tests/phone_photos/make_heic.py tests/phone_photos"""

import sys
from pathlib import Path

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()
SCENES = Path("tests/data/scenes/images")
# EXIF orientation n: the pixels stored as a camera would, so that orientation n makes them upright again.
STORED = {1: [], 2: [Image.Transpose.FLIP_LEFT_RIGHT], 3: [Image.Transpose.ROTATE_180],
          4: [Image.Transpose.FLIP_TOP_BOTTOM], 5: [Image.Transpose.TRANSPOSE], 6: [Image.Transpose.ROTATE_90],
          7: [Image.Transpose.TRANSVERSE], 8: [Image.Transpose.ROTATE_270]}


def main(out: Path) -> None:
    photo = Image.open(SCENES / "11-photo.jpg").convert("RGB")
    width, height = 8064, 6048  # a 48 MP phone photo of one close face: harness.images.fit_on_canvas's geometry
    scale = min(width / photo.width, height / photo.height)
    big = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BILINEAR)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(big, ((width - big.width) // 2, (height - big.height) // 2))
    canvas.save(out / "face-48mp.heic", quality=50, tile_size=512)
    small = Image.open(SCENES / "maksssksksss6.jpg").convert("RGB").resize((600, 405))
    for orientation, operations in STORED.items():
        stored = small
        for operation in operations:
            stored = stored.transpose(operation)
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(out / f"grid-orientation-{orientation}.heic", quality=60, tile_size=128, exif=exif.tobytes())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
