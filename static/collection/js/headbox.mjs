// "Head in the box": both eye patches inside the centre square of the camera image, the test
// WebGazer's face feedback box makes (its border turns green). Computed here from the eye patches
// of each tracker frame, so it does not depend on WebGazer's preview: hiding the preview (the chat
// page does) stops WebGazer from updating its box, and reading the box's colour gave 0 on every
// chat sample. Pure (tested in node).
'use strict';

/** WebGazer's default `params.faceFeedbackBoxRatio`: the box's side over the image's shorter side. */
export const FEEDBACK_BOX_RATIO = 0.66;

/**
 * Whether both eyes lie inside the feedback box, as WebGazer's checkEyesInValidationBox decides.
 *
 * `patches` is what the tracker's getEyePatches returns (`left`/`right` with `imagex`, `imagey`,
 * `width`, `height` in image pixels), or a falsy value when it found no face (then false);
 * `width`/`height` are the image's size.
 */
export function eyesInBox(patches, width, height, ratio = FEEDBACK_BOX_RATIO) {
  if (!patches || !patches.left || !patches.right || !(width > 0) || !(height > 0)) return false;
  const size = Math.min(width, height) * ratio;
  const left = (width - size) / 2;
  const top = (height - size) / 2;
  const inside = (e) => e.imagex > left && e.imagex + e.width < left + size
    && e.imagey > top && e.imagey + e.height < top + size;
  return inside(patches.left) && inside(patches.right);
}
