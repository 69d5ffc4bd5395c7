// Pages a worker leaves the study from (the completion code, the calibration way out): forget
// WebGazer's stored calibration, so that the next person on this computer starts from nothing
// (issue 10, item 4). Not loaded when the study setting keep_webgazer_data is on.
'use strict';

import { forgetStoredCalibration } from './gaze.mjs';

const cleared = await forgetStoredCalibration();
document.body.dataset.webgazerData = cleared ? 'cleared' : 'not-cleared';
