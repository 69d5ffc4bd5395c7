"""A camera video of a face for Chromium's fake capture device, made at test time.

The face is scikit-image's bundled public-domain astronaut photograph (Eileen Collins, NASA),
cropped around the head, resized and centred on a 640x480 grey frame, and written as raw YUV
4:2:0 frames in the Y4M container that ``--use-file-for-fake-video-capture`` reads (Chromium
loops it). Written with numpy only: no video library is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 640, 480


def face_frame(size: int = 380) -> np.ndarray:
    """One RGB frame (HEIGHT, WIDTH, 3) uint8 with the astronaut's head in the middle."""
    from skimage import data
    from skimage.transform import resize

    photo = data.astronaut()
    head = photo[10:290, 70:350]  # the head and shoulders, square
    head = (resize(head, (size, size), anti_aliasing=True) * 255).astype(np.uint8)
    frame = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    top, left = (HEIGHT - size) // 2, (WIDTH - size) // 2
    frame[top: top + size, left: left + size] = head
    return frame


def rgb_to_i420(rgb: np.ndarray) -> bytes:
    """BT.601 full-range RGB -> planar Y, U, V (chroma averaged over 2x2 blocks)."""
    f = rgb.astype(np.float64)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

    def sub(c: np.ndarray) -> np.ndarray:
        return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))

    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def write_face_y4m(path: Path, *, frames: int = 30, fps: int = 30) -> Path:
    """Write ``frames`` frames of the face (a slow 1-pixel sway, like a person sitting still)."""
    base = face_frame()
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for k in range(frames):
            out.write(b"FRAME\n")
            out.write(rgb_to_i420(np.roll(base, (k // 10) % 2, axis=1)))
    return path
