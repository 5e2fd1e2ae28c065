// Digit Canvas: draw on the pad, and the REST API says which digit it is, or which number.
"use strict";

(() => {
  // One digit on a square pad, or a number across a wide one.
  const MODES = {
    digit: {
      url: "/api/predict?include_input=true",
      width: 560,
      height: 560,
      hint: "Draw a digit here, or drop an image",
    },
    number: {
      url: "/api/read?include_input=true",
      width: 1120,
      height: 400,
      hint: "Write a number here, or drop an image",
    },
  };
  const DRAWING_INTERVAL_MS = 150; // while a stroke goes on: often, not at every pointer move
  const CROP_MARGIN = 4; // pad pixels kept around the strokes sent
  // The server reads a number's row at most this many pixels high, at a whole fraction of its
  // size, if its digits stay at least this high (NUMBER_WORKING_HEIGHT and FINE_BOX in
  // app/serving/segmentation.py): the page draws the strokes it sends at that size.
  const NUMBER_ROW_HEIGHT = 160;
  const NUMBER_DIGIT_HEIGHT = 80;
  const STROKE_EDGE = 3; // pad pixels of a stroke's anti-aliased edge outside a digit's box
  const BRUSH_STORAGE_KEY = "digit-canvas.brush";
  const MODE_STORAGE_KEY = "digit-canvas.mode";

  const layout = document.getElementById("layout");
  const pad = document.getElementById("pad");
  const padArea = document.getElementById("pad-area");
  const padHint = document.getElementById("pad-hint");
  const context = pad.getContext("2d");
  const boxes = document.getElementById("boxes");
  const boxesContext = boxes.getContext("2d");
  const modeButtons = Array.from(document.querySelectorAll("[data-mode]"));
  const undoButton = document.getElementById("undo");
  const clearButton = document.getElementById("clear");
  const uploadInput = document.getElementById("upload");
  const brushInput = document.getElementById("brush");
  const brushValue = document.getElementById("brush-value");
  const results = document.getElementById("results");
  const digitView = document.getElementById("digit");
  const confidenceView = document.getElementById("confidence");
  const numberDigits = document.getElementById("number-digits");
  const statusView = document.getElementById("status");
  const chart = document.getElementById("chart");
  const bars = Array.from(chart.querySelectorAll(".bar"));
  const modelInput = document.getElementById("model-input").getContext("2d");
  const feedback = document.getElementById("feedback");
  const feedbackCount = document.getElementById("feedback-count");
  const feedbackButtons = Array.from(feedback.querySelectorAll("button"));
  const inside = document.getElementById("inside");
  const compareSeed = document.getElementById("compare-seed");
  const insideModels = document.getElementById("inside-models");
  const insideStatus = document.getElementById("inside-status");
  const explainedTemplate = document.getElementById("explained-template");

  const state = {
    mode: "digit",
    strokes: [], // {width, points: [{x, y}]}, in canvas pixels
    activeStroke: null,
    activePointer: null,
    pointerType: null, // what drew last: a coarse hint stored with a correction
    // An image chosen or dropped instead of drawing: {file, bitmap, placement, paper}.
    upload: null,
    // Requests: at most one in flight. A change meanwhile is sent when it returns, so that
    // live results keep coming over a slow network instead of each being cancelled.
    inFlight: false,
    again: false, // the drawing changed while a request was in flight
    announceAgain: false,
    // Bumped when earlier answers no longer apply (cleared, another mode, another upload).
    epoch: 0,
    throttle: 0,
    renderQueued: false,
    // Inside the network: what is shown ({input, subject}: which digit of a number, if one),
    // explained with its own requests when open.
    explained: { shown: null, inFlight: false, again: false, runnerUp: {} },
    answered: null, // the digit the page shows as its answer
    reading: null, // the last number read: {digits: [...]}
    selected: 0,
    chosen: false, // whether the user chose the digit shown; if not, the last one is
    answerInStatus: false, // the status line announces an answer (outdated by the next one)
    outdated: false, // the answer shown is about strokes since taken back
    // How much mode switches shrank strokes alone to fit a pad: a switch back restores it.
    shrunk: 1,
  };

  // ---- drawing -----------------------------------------------------------------------------

  function inkColour() {
    const paper = state.upload && state.upload.paper;
    if (paper) {
      // Strokes added to an image are ink on its paper, whatever the page's colour scheme.
      return paper.light ? "#000" : "#fff";
    }
    return getComputedStyle(document.documentElement).getPropertyValue("--ink").trim() || "#000";
  }

  function paperOf(bitmap) {
    // The paper strokes added to an image go on: an opaque image's edge colour (the median
    // of each channel); for an image over transparency (a canvas export), plain paper
    // opposite to its strokes, as the server reads them. Null if nothing of it is visible.
    const side = 64;
    const probe = document.createElement("canvas");
    probe.width = probe.height = side;
    const probeContext = probe.getContext("2d", { willReadFrequently: true });
    probeContext.drawImage(bitmap, 0, 0, side, side);
    const { data } = probeContext.getImageData(0, 0, side, side);
    const brightness = (red, green, blue) => 0.299 * red + 0.587 * green + 0.114 * blue;
    const edge = [[], [], [], []];
    let opacity = 0;
    let lightness = 0;
    for (let i = 0; i < side * side; i += 1) {
      const row = Math.floor(i / side);
      const column = i % side;
      if (row === 0 || row === side - 1 || column === 0 || column === side - 1) {
        edge.forEach((values, channel) => values.push(data[4 * i + channel]));
      }
      opacity += data[4 * i + 3];
      lightness += data[4 * i + 3] * brightness(...data.subarray(4 * i, 4 * i + 3));
    }
    const [red, green, blue, alpha] = edge.map((values) => {
      values.sort((one, other) => one - other);
      return values[values.length >> 1];
    });
    if (alpha === 255) {
      return {
        colour: `rgb(${red} ${green} ${blue})`,
        light: brightness(red, green, blue) >= 128,
      };
    }
    if (opacity === 0) {
      return null;
    }
    const lightStrokes = lightness / opacity >= 128;
    return { colour: lightStrokes ? "#000" : "#fff", light: !lightStrokes };
  }

  function hasContent() {
    return state.strokes.length > 0 || state.upload !== null;
  }

  function strokesBox(margin = 0, strokes = state.strokes) {
    // The strokes' extent, their round pen's width and `margin` included (curves through
    // the points stay between them): {left, top, right, bottom}.
    const box = { left: Infinity, top: Infinity, right: -Infinity, bottom: -Infinity };
    strokes.forEach(({ width, points }) => {
      const reach = width / 2 + margin;
      points.forEach(({ x, y }) => {
        box.left = Math.min(box.left, x - reach);
        box.top = Math.min(box.top, y - reach);
        box.right = Math.max(box.right, x + reach);
        box.bottom = Math.max(box.bottom, y + reach);
      });
    });
    return box;
  }

  function drawStrokes(target) {
    const colour = inkColour();
    target.strokeStyle = colour;
    target.fillStyle = colour;
    target.lineCap = "round";
    target.lineJoin = "round";
    state.strokes.forEach((stroke) => drawStroke(target, stroke));
  }

  function drawStroke(target, stroke) {
    const points = stroke.points;
    target.lineWidth = stroke.width;
    if (points.length === 1) {
      target.beginPath();
      target.arc(points[0].x, points[0].y, stroke.width / 2, 0, 2 * Math.PI);
      target.fill();
      return;
    }
    // Quadratic curves through the midpoints: smooth strokes from coarse pointer samples.
    target.beginPath();
    target.moveTo(points[0].x, points[0].y);
    for (let i = 1; i < points.length - 1; i += 1) {
      const midX = (points[i].x + points[i + 1].x) / 2;
      const midY = (points[i].y + points[i + 1].y) / 2;
      target.quadraticCurveTo(points[i].x, points[i].y, midX, midY);
    }
    const last = points[points.length - 1];
    target.lineTo(last.x, last.y);
    target.stroke();
  }

  function drawUpload(upload) {
    const { bitmap } = upload;
    if (!upload.placement) {
      // A new image fills the pad, centred. Where it lies on the pad is kept: the boxes of a
      // number read from it are in its pixels, and a mode switch moves it with the strokes.
      const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
      const x = (pad.width - bitmap.width * scale) / 2;
      const y = (pad.height - bitmap.height * scale) / 2;
      upload.placement = { scale, x, y };
    }
    const { scale, x, y } = upload.placement;
    context.drawImage(bitmap, x, y, bitmap.width * scale, bitmap.height * scale);
  }

  function render() {
    state.renderQueued = false;
    context.clearRect(0, 0, pad.width, pad.height);
    if (state.upload && state.upload.bitmap) {
      if (state.upload.paper) {
        // Around the image, its paper: strokes over it are then sent on one opaque sheet,
        // not an opaque image in transparent margins that would read as ink.
        context.fillStyle = state.upload.paper.colour;
        context.fillRect(0, 0, pad.width, pad.height);
      }
      drawUpload(state.upload);
    }
    drawStrokes(context);
    padArea.classList.toggle("has-content", hasContent());
    undoButton.disabled = !hasContent();
    clearButton.disabled = !hasContent();
  }

  function queueRender() {
    if (!state.renderQueued) {
      state.renderQueued = true;
      requestAnimationFrame(render);
    }
  }

  function canvasPoint(event) {
    const rect = pad.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * pad.width) / rect.width,
      y: ((event.clientY - rect.top) * pad.height) / rect.height,
    };
  }

  function startStroke(event) {
    if (state.activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) {
      return;
    }
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    state.activePointer = event.pointerId;
    state.pointerType = event.pointerType || null;
    state.chosen = false; // new ink: the digit being written is the one shown
    state.activeStroke = { width: Number(brushInput.value), points: [canvasPoint(event)] };
    state.strokes.push(state.activeStroke);
    queueRender();
  }

  function extendStroke(event) {
    if (event.pointerId !== state.activePointer) {
      return;
    }
    event.preventDefault();
    // Coalesced events carry every sample since the last frame: smoother pen and touch lines.
    const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    (samples.length ? samples : [event]).forEach((sample) => {
      state.activeStroke.points.push(canvasPoint(sample));
    });
    queueRender();
    predictSoon();
  }

  function endStroke(event) {
    if (event.pointerId !== state.activePointer) {
      return;
    }
    releaseStroke();
    queueRender();
    predictNow();
  }

  function releaseStroke() {
    if (state.activePointer !== null && pad.hasPointerCapture(state.activePointer)) {
      pad.releasePointerCapture(state.activePointer);
    }
    state.activePointer = null;
    state.activeStroke = null;
  }

  function undo() {
    if (state.activeStroke) {
      // Undo in the middle of a stroke takes that stroke back, and the pointer with it.
      state.strokes.pop();
      releaseStroke();
    } else if (state.strokes.length > 0) {
      state.strokes.pop();
    } else {
      removeUpload();
    }
    // What is shown, and any answer on its way, is about strokes no longer there.
    forgetAnswers();
    setOutdated(true);
    afterEdit();
  }

  function clearAll() {
    releaseStroke();
    state.strokes = [];
    removeUpload();
    afterEdit();
  }

  function removeUpload() {
    state.upload = null;
    // Otherwise choosing the same file again would not count as a change.
    uploadInput.value = "";
  }

  function afterEdit() {
    if (state.strokes.length === 0) {
      state.shrunk = 1; // a new drawing's size is its own
    }
    render();
    if (hasContent()) {
      predictNow();
    } else {
      forgetAnswers();
      showEmpty("");
    }
  }

  // ---- modes -------------------------------------------------------------------------------

  function placeStrokes(scale, shiftX, shiftY) {
    state.strokes = state.strokes.map(({ width, points }) => ({
      width: width * scale,
      points: points.map(({ x, y }) => ({ x: x * scale + shiftX, y: y * scale + shiftY })),
    }));
  }

  function fitDrawing(width, height) {
    // The drawing moved onto a pad of `width` x `height`, centred: an image and the strokes
    // on and beside it as large as the pad allows, as a new image fills it; strokes alone
    // at the size they were drawn if they fit, with a margin.
    const placement = state.upload && state.upload.placement;
    const parts = state.strokes.length > 0 ? [strokesBox()] : [];
    if (placement) {
      const { bitmap } = state.upload;
      parts.push({ left: placement.x, top: placement.y,
        right: placement.x + bitmap.width * placement.scale,
        bottom: placement.y + bitmap.height * placement.scale });
    }
    if (parts.length === 0) {
      return;
    }
    const left = Math.min(...parts.map((part) => part.left));
    const top = Math.min(...parts.map((part) => part.top));
    const right = Math.max(...parts.map((part) => part.right));
    const bottom = Math.max(...parts.map((part) => part.bottom));
    const margin = placement ? 0 : 0.05 * Math.min(width, height);
    const fit = Math.min((width - 2 * margin) / (right - left),
      (height - 2 * margin) / (bottom - top));
    const scale = placement ? fit : Math.min(1 / state.shrunk, fit);
    state.shrunk = placement ? 1 : state.shrunk * scale;
    const shiftX = width / 2 - ((left + right) / 2) * scale;
    const shiftY = height / 2 - ((top + bottom) / 2) * scale;
    placeStrokes(scale, shiftX, shiftY);
    if (placement) {
      state.upload.placement = {
        scale: placement.scale * scale,
        x: placement.x * scale + shiftX,
        y: placement.y * scale + shiftY,
      };
    }
  }

  function setMode(mode, { announce = true } = {}) {
    const settings = MODES[mode];
    state.mode = mode;
    releaseStroke();
    forgetAnswers();
    fitDrawing(settings.width, settings.height);
    pad.width = boxes.width = settings.width;
    pad.height = boxes.height = settings.height;
    padHint.textContent = settings.hint;
    layout.classList.toggle("number-mode", mode === "number");
    modeButtons.forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    });
    try {
      localStorage.setItem(MODE_STORAGE_KEY, mode);
    } catch {
      // No storage: the mode is not remembered.
    }
    render();
    showEmpty(
      announce
        ? mode === "number"
          ? "Number mode: write the digits side by side."
          : "Digit mode: draw one digit."
        : "",
    );
    if (hasContent()) {
      predict(false); // the drawing kept, read the other way; the mode's message stays
    }
  }

  // ---- uploads -----------------------------------------------------------------------------

  async function useFile(file) {
    if (!file) {
      return;
    }
    if (!file.type.startsWith("image/")) {
      showError(`“${file.name}” is not an image. Choose a PNG, JPEG, WebP, GIF or BMP file.`);
      return;
    }
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      // The browser cannot show it; the server may still read it, and says so if not.
    }
    releaseStroke();
    state.strokes = [];
    state.upload = { file, bitmap, placement: null, paper: bitmap && paperOf(bitmap) };
    forgetAnswers();
    afterEdit();
  }

  // ---- prediction --------------------------------------------------------------------------

  function forgetAnswers() {
    clearTimeout(state.throttle);
    state.throttle = 0;
    state.epoch += 1; // any answer still on its way is now about something else
    state.again = false;
    state.announceAgain = false;
  }

  function predictSoon() {
    // At most one prediction per interval while drawing, quiet for screen readers.
    if (!state.throttle) {
      state.throttle = setTimeout(() => {
        state.throttle = 0;
        predict(false);
      }, DRAWING_INTERVAL_MS);
    }
  }

  function predictNow() {
    clearTimeout(state.throttle);
    state.throttle = 0;
    predict(true);
  }

  function strokeBounds() {
    // The part of the pad the strokes cover, with a little anti-aliasing, in whole pixels.
    const { left, top, right, bottom } = strokesBox(CROP_MARGIN);
    const x = Math.max(0, Math.floor(left));
    const y = Math.max(0, Math.floor(top));
    const width = Math.min(pad.width, Math.ceil(right)) - x;
    const height = Math.min(pad.height, Math.ceil(bottom)) - y;
    if (width < 1 || height < 1) {
      // Strokes only past the pad's edges (the pointer is captured): nothing on it to cut.
      return { x: 0, y: 0, width: pad.width, height: pad.height };
    }
    return { x, y, width, height };
  }

  function sentScale(part) {
    // How many pad pixels a pixel sent holds. A number's strokes go at the size the server
    // would read them at: the whole factor that brings the row under NUMBER_ROW_HEIGHT, if
    // their median height stays NUMBER_DIGIT_HEIGHT or more (that of a stroke, not a digit:
    // a bar or a lifted flag makes it smaller, never larger). The bench's 4-digit number: a
    // 445x105 PNG of 6 kB instead of 890x210 and 13 kB, read in 0.80x to 0.93x the server
    // time (five bench runs).
    if (state.mode !== "number") {
      return 1;
    }
    const heights = state.strokes
      .map((stroke) => {
        const { top, bottom } = strokesBox(0, [stroke]);
        return bottom - top;
      })
      .sort((a, b) => a - b);
    const middle = heights.length / 2;
    const median = heights.length % 2 ? heights[Math.floor(middle)]
      : (heights[middle - 1] + heights[middle]) / 2;
    const factor = Math.min(Math.ceil(part.height / NUMBER_ROW_HEIGHT),
      Math.floor(median / NUMBER_DIGIT_HEIGHT));
    return Math.max(1, factor);
  }

  function drawingImage() {
    // What is sent, and where its pixels lie on the pad: {blob, origin: {x, y, scale}}. An
    // untouched upload goes as it is; strokes alone go as the part of the pad they cover,
    // transparent background and all, drawn anew at the size the server reads them (see
    // sentScale): the rest of the pad tells the server nothing, and a smaller image is
    // encoded, sent and decoded sooner. Strokes over an upload go as the whole pad.
    if (state.upload && state.strokes.length === 0) {
      return Promise.resolve({ blob: state.upload.file, origin: null });
    }
    const image = document.createElement("canvas");
    let origin;
    if (state.upload) {
      if (state.renderQueued) {
        render(); // the last pointer samples are not on the canvas until the next frame
      }
      image.width = pad.width;
      image.height = pad.height;
      image.getContext("2d").drawImage(pad, 0, 0);
      origin = { x: 0, y: 0, scale: 1 };
    } else {
      const part = strokeBounds();
      const scale = sentScale(part);
      image.width = Math.ceil(part.width / scale);
      image.height = Math.ceil(part.height / scale);
      const drawn = image.getContext("2d");
      drawn.setTransform(1 / scale, 0, 0, 1 / scale, -part.x / scale, -part.y / scale);
      drawStrokes(drawn);
      origin = { x: part.x, y: part.y, scale };
    }
    return new Promise((resolve) => {
      image.toBlob((blob) => resolve({ blob, origin }), "image/png");
    });
  }

  async function predict(announce) {
    if (!hasContent()) {
      return;
    }
    if (state.inFlight) {
      state.again = true;
      state.announceAgain = state.announceAgain || announce;
      return;
    }
    state.inFlight = true;
    const epoch = state.epoch;
    const mode = state.mode;
    try {
      const { blob, origin } = await drawingImage();
      const response = await fetch(MODES[mode].url, {
        method: "POST",
        headers: { "Content-Type": blob.type || "application/octet-stream" },
        body: blob,
      });
      const body = await response.json().catch(() => ({}));
      if (epoch === state.epoch) {
        showAnswer(response, body, { announce, mode, origin });
      }
    } catch {
      if (epoch === state.epoch) {
        showUnanswered("Cannot reach the server. Check the connection; your drawing is kept.");
      }
    } finally {
      state.inFlight = false;
      if (state.again && hasContent()) {
        // The drawing changed meanwhile: now its latest state.
        const again = state.announceAgain;
        state.again = false;
        state.announceAgain = false;
        predict(again);
      }
    }
  }

  function showAnswer(response, body, { announce, mode, origin }) {
    if (response.ok) {
      setOutdated(false);
      if (mode === "number") {
        showReading(body, announce, origin);
      } else {
        showPrediction(body, announce);
      }
    } else if (body.reason === "empty_drawing") {
      showEmpty(`Nothing to recognise yet: ${body.detail}.`);
    } else if (response.status === 503 && response.headers.get("Retry-After")) {
      showUnanswered(`The server is busy: ${body.detail || "try again in a moment"}.`);
    } else {
      // Refused: there is no answer for what the pad shows, and the last one was about
      // something else (an upload the server could not read replacing a number read).
      resetResults();
      const detail = body.detail || response.statusText || "no detail";
      showError(`The server could not read it (${response.status}): ${detail}.`);
    }
  }

  // ---- results -----------------------------------------------------------------------------

  function aDigit(digit) {
    return `${digit === 8 ? "an" : "a"} ${digit}`;
  }

  const ORDINAL_RULES = new Intl.PluralRules("en", { type: "ordinal" });
  const ORDINAL_SUFFIXES = { one: "st", two: "nd", few: "rd", other: "th" };

  function ordinal(position) {
    return `${position}${ORDINAL_SUFFIXES[ORDINAL_RULES.select(position)]}`;
  }

  function capitalised(text) {
    return text[0].toUpperCase() + text.slice(1);
  }

  function percent(probability) {
    const value = probability * 100;
    if (value >= 99.95) return "100%";
    if (value < 0.1) return value === 0 ? "0%" : "<0.1%";
    return `${value.toFixed(1)}%`;
  }

  function setStatus(message, isError, { answer = false } = {}) {
    statusView.textContent = message;
    statusView.classList.toggle("error", Boolean(isError));
    state.answerInStatus = answer;
  }

  function announceAnswer(message, announce) {
    // Screen readers hear the answer when a stroke ends; the live answers while drawing
    // only take an older one's words away, so that the status never contradicts the page.
    if (announce) {
      setStatus(message, false, { answer: true });
    } else if (state.answerInStatus) {
      setStatus("", false);
    }
  }

  function showChart(result, subject = null) {
    chart.setAttribute(
      "aria-label",
      subject ? `Probability of each digit, for ${subject}` : "Probability of each digit",
    );
    result.probabilities.forEach((probability, digit) => {
      const bar = bars[digit];
      bar.querySelector(".bar-fill").style.setProperty("--p", probability.toFixed(4));
      bar.querySelector(".bar-value").textContent = percent(probability);
      bar.classList.toggle("top", digit === result.digit);
      bar.setAttribute("aria-label", `${digit}: ${percent(probability)}`);
    });
    if (result.input) {
      showModelInput(result.input);
      explain({ input: result.input, subject });
    }
  }

  function runnerUpIfClose(result) {
    // The runner-up when it has at least a third of the answer's (calibrated) probability.
    const ranked = result.probabilities
      .map((probability, digit) => ({ probability, digit }))
      .sort((one, other) => other.probability - one.probability);
    return ranked[1].probability >= ranked[0].probability / 3 ? ranked[1].digit : null;
  }

  function setConfidence(lead, rest) {
    confidenceView.innerHTML = "";
    const strong = document.createElement("strong");
    strong.textContent = lead;
    confidenceView.append(strong, rest);
  }

  function showPrediction(result, announce) {
    state.reading = null;
    hide(numberDigits);
    clearBoxes();
    showChart(result);
    digitView.textContent = String(result.digit);
    digitView.classList.remove("number");
    const doubt = runnerUpIfClose(result);
    if (result.digits_found) {
      // Not "sure it is a 4" of what looks like a number.
      setConfidence(`${result.digits_found} digits?`, ` Read as one, it looks most like ${aDigit(result.digit)}`);
    } else if (doubt === null) {
      setConfidence(percent(result.confidence), ` sure it is ${aDigit(result.digit)}`);
    } else {
      // The moments when a correction helps most: say so, and which it hesitates between.
      setConfidence(
        `${capitalised(aDigit(result.digit))} or ${aDigit(doubt)}?`,
        ` ${percent(result.confidence)} against ${percent(result.probabilities[doubt])}`,
      );
    }
    state.answered = result.digit;
    feedback.hidden = false;
    if (result.digits_found) {
      setStatus(
        `This looks like ${result.digits_found} digits. Choose “A number” to read each of them.`,
        false,
      );
    } else {
      announceAnswer(
        doubt === null
          ? `Prediction: ${result.digit}, ${percent(result.confidence)} confident.`
          : `Prediction: ${result.digit}, ${percent(result.confidence)}, or perhaps ${aDigit(doubt)}.`,
        announce,
      );
    }
  }

  function showReading(reading, announce, origin) {
    state.reading = { ...reading, origin };
    // The digit being written, unless the user chose one that is still there.
    if (!state.chosen || state.selected >= reading.digits.length) {
      state.chosen = false;
      state.selected = reading.digits.length - 1;
    }
    digitView.textContent = reading.number;
    digitView.classList.add("number");
    const least = Math.min(...reading.digits.map((digit) => digit.confidence));
    const count = reading.digits.length;
    setConfidence(
      `${count} digit${count === 1 ? "" : "s"}`,
      count === 1 ? `, ${percent(least)} sure` : `, the least sure at ${percent(least)}`,
    );
    // The digit buttons are made anew: one that had the focus hands it to the one chosen.
    const focused = numberDigits.contains(document.activeElement);
    numberDigits.replaceChildren(
      ...reading.digits.map((digit, index) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "number-digit";
        button.textContent = String(digit.digit);
        button.dataset.index = String(index);
        button.setAttribute(
          "aria-label",
          `Digit ${index + 1} of ${count}: ${digit.digit}, ${percent(digit.confidence)} sure`,
        );
        return button;
      }),
    );
    numberDigits.setAttribute("aria-label", `The digits of ${reading.number}; choose one to see its chart`);
    numberDigits.hidden = false;
    // A digit's correction is cut out of the pad, which an upload this browser cannot show
    // (the server may still read it) is not on: none is offered then.
    feedback.hidden = boxOnPad(reading.digits[0].box) === null;
    selectDigit(state.selected, focused);
    announceAnswer(`Read: ${reading.number}.`, announce);
  }

  function chosenDigitName() {
    // Which digit of the number read is shown: "the 2nd digit of 2026"; null for one alone.
    const reading = state.reading;
    if (!reading || reading.digits.length < 2) {
      return null;
    }
    return `the ${ordinal(state.selected + 1)} digit of ${reading.number}`;
  }

  function selectDigit(index, focus) {
    const digits = state.reading.digits;
    state.selected = Math.max(0, Math.min(index, digits.length - 1));
    Array.from(numberDigits.children).forEach((button, position) => {
      const chosen = position === state.selected;
      button.setAttribute("aria-pressed", String(chosen));
      button.tabIndex = chosen ? 0 : -1; // one tab stop; arrow keys move within
      if (chosen && focus) {
        button.focus();
      }
    });
    showChart(digits[state.selected], chosenDigitName());
    state.answered = digits[state.selected].digit;
    drawBoxes();
  }

  function boxOnPad(box) {
    // Boxes are in the pixels of the image sent: a part of the pad, or an upload placed on it.
    // None for an upload the browser cannot show, which the server could read.
    const { origin } = state.reading;
    const placement = origin === null && state.upload ? state.upload.placement : null;
    const [x, y, width, height] = box;
    if (origin === null && !placement) {
      return null;
    }
    const { x: left, y: top, scale } = placement || origin;
    return { x: left + x * scale, y: top + y * scale, width: width * scale, height: height * scale };
  }

  function clearBoxes() {
    boxesContext.clearRect(0, 0, boxes.width, boxes.height);
  }

  function drawBoxes() {
    clearBoxes();
    if (state.outdated) {
      return;
    }
    const styles = getComputedStyle(document.documentElement);
    const accent = styles.getPropertyValue("--bar-top").trim();
    const muted = styles.getPropertyValue("--muted").trim();
    const background = styles.getPropertyValue("--bg").trim();
    // Pad pixels per pixel on screen: a phone shows the 1120-pixel pad 350 pixels wide, and
    // labels of 26 pad pixels would be 8 on screen.
    const shown = boxes.getBoundingClientRect().width;
    const unit = Math.max(1, shown > 0 ? boxes.width / shown / 1.6 : 1);
    const labelSize = Math.round(26 * unit);
    boxesContext.font = `600 ${labelSize}px system-ui, sans-serif`;
    boxesContext.lineJoin = "round";
    state.reading.digits.forEach((digit, index) => {
      const onPad = boxOnPad(digit.box);
      if (!onPad) {
        return;
      }
      const chosen = index === state.selected;
      const { x, y, width, height } = onPad;
      const colour = chosen ? accent : muted;
      boxesContext.strokeStyle = colour;
      boxesContext.lineWidth = (chosen ? 5 : 2) * unit;
      boxesContext.setLineDash(chosen ? [] : [10 * unit, 8 * unit]);
      boxesContext.strokeRect(x - 8, y - 8, width + 16, height + 16);
      // A halo of the page's background: the label stays legible over an image's paper.
      const labelX = x - 6;
      const labelY = Math.max(labelSize, y - 8 - 6 * unit);
      boxesContext.setLineDash([]);
      boxesContext.lineWidth = 4 * unit;
      boxesContext.strokeStyle = background;
      boxesContext.strokeText(String(digit.digit), labelX, labelY);
      boxesContext.fillStyle = colour;
      boxesContext.fillText(String(digit.digit), labelX, labelY);
    });
  }

  function showModelInput(rows) {
    const image = modelInput.createImageData(28, 28);
    rows.flat().forEach((value, index) => {
      const level = Math.round(value * 255);
      image.data.set([level, level, level, 255], index * 4);
    });
    modelInput.putImageData(image, 0, 0);
  }

  function resetResults() {
    state.reading = null;
    state.selected = 0;
    state.chosen = false;
    bars.forEach((bar) => {
      bar.querySelector(".bar-fill").style.setProperty("--p", "0");
      bar.querySelector(".bar-value").textContent = "–";
      bar.classList.remove("top");
      bar.removeAttribute("aria-label");
    });
    digitView.textContent = "?";
    digitView.classList.remove("number");
    setOutdated(false);
    confidenceView.textContent =
      state.mode === "number" ? "Write to read a number" : "Draw to see a prediction";
    hide(numberDigits);
    numberDigits.replaceChildren();
    hide(feedback);
    state.answered = null;
    clearBoxes();
    modelInput.fillStyle = "#000";
    modelInput.fillRect(0, 0, 28, 28);
    state.explained.shown = null;
    insideModels.replaceChildren();
    insideStatus.textContent = inside.open ? "Draw to look inside the network." : "";
  }

  function showEmpty(message) {
    resetResults();
    setStatus(message, false);
  }

  function showError(message) {
    setStatus(message, true);
  }

  function showUnanswered(message) {
    // No answer for the drawing as it now is, yet: the last one stays, dimmed, as while
    // waiting for one.
    setOutdated(true);
    showError(message);
  }

  function setOutdated(outdated) {
    // Until the answer for the drawing as it now is: the last one dimmed, without the boxes
    // of strokes taken back (whatever redraws them), and no correction of it.
    state.outdated = outdated;
    results.classList.toggle("outdated", outdated);
    if (outdated) {
      clearBoxes();
      hide(feedback);
    }
  }

  function hide(element) {
    // Hiding the control that has the keyboard's focus would drop it on the page's body,
    // where the next Tab starts over: the pad, being edited, takes it.
    if (element.contains(document.activeElement)) {
      pad.focus({ preventScroll: true });
    }
    element.hidden = true;
  }

  // ---- corrections -------------------------------------------------------------------------

  function correctionImage() {
    // What the answer was about: the drawing or upload as sent, or in number mode the chosen
    // digit cut out of the pad, with a margin but without the ink of the digits beside it.
    if (!state.reading) {
      return drawingImage().then(({ blob }) => blob);
    }
    const boxes = state.reading.digits.map((digit) => boxOnPad(digit.box));
    const own = boxes[state.selected];
    const margin = 0.15 * Math.max(own.width, own.height);
    const left = own.x - margin;
    const top = own.y - margin;
    const cut = document.createElement("canvas");
    cut.width = Math.round(own.width + 2 * margin);
    cut.height = Math.round(own.height + 2 * margin);
    const cutContext = cut.getContext("2d");
    const copy = ({ x, y, width, height }) => {
      cutContext.drawImage(pad, x, y, width, height, x - left, y - top, width, height);
    };
    copy({ x: left, y: top, width: cut.width, height: cut.height });
    // The other digits' boxes (with their strokes' soft edge) become paper, and the chosen
    // digit's own box is copied again over any part of it they overlap.
    const paper = state.upload && state.upload.paper;
    const grown = ({ x, y, width, height }) => ({ x: x - STROKE_EDGE, y: y - STROKE_EDGE,
      width: width + 2 * STROKE_EDGE, height: height + 2 * STROKE_EDGE });
    boxes.forEach((box, index) => {
      if (index !== state.selected) {
        const { x, y, width, height } = grown(box);
        if (paper) {
          cutContext.fillStyle = paper.colour;
          cutContext.fillRect(x - left, y - top, width, height);
        } else {
          cutContext.clearRect(x - left, y - top, width, height);
        }
      }
    });
    copy(grown(own));
    return new Promise((resolve) => cut.toBlob(resolve, "image/png"));
  }

  async function sendCorrection(label) {
    const epoch = state.epoch;
    const answered = state.answered;
    const kept = [chosenDigitName(), "kept"].filter(Boolean).join(" ");
    feedbackButtons.forEach((button) => {
      button.disabled = true;
    });
    try {
      const form = new FormData();
      form.append("file", await correctionImage(), "drawing.png");
      form.append("label", String(label));
      if (answered !== null) {
        form.append("predicted", String(answered));
      }
      if (state.pointerType) {
        form.append("pointer_type", state.pointerType);
      }
      form.append("canvas_width", String(pad.width));
      form.append("canvas_height", String(pad.height));
      const response = await fetch("/api/feedback", { method: "POST", body: form });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        setStatus(
          label === answered
            ? `Thank you: ${kept} as right (correction ${body.id}).`
            : `Thank you: ${kept} as ${aDigit(label)} (correction ${body.id}).`,
          false,
        );
        showCorrectionCount();
      } else {
        showError(`The correction was not kept (${response.status}): ${body.detail || response.statusText}.`);
      }
    } catch {
      showError("Cannot reach the server: the correction was not kept.");
    } finally {
      if (epoch === state.epoch) {
        feedbackButtons.forEach((button) => {
          button.disabled = false;
        });
      }
    }
  }

  async function showCorrectionCount() {
    try {
      const response = await fetch("/api/feedback/stats");
      if (response.ok) {
        const stats = await response.json();
        feedbackCount.textContent = `${stats.total.toLocaleString("en")} correction${stats.total === 1 ? "" : "s"} collected so far.`;
      }
    } catch {
      // The count is a courtesy: without it, corrections still work.
    }
  }

  document.getElementById("feedback-right").addEventListener("click", () => {
    if (state.answered !== null) {
      sendCorrection(state.answered);
    }
  });
  feedback.querySelectorAll("[data-label]").forEach((button) => {
    button.addEventListener("click", () => sendCorrection(Number(button.dataset.label)));
  });

  // ---- inside the network ------------------------------------------------------------------
  // The input shown is explained by the server (/api/predict/pixels?explain=true), for the
  // served model and, on request, the book's recipe: the real numbers of each step.

  const MODEL_TITLES = { default: "The served model", seed: "The book's recipe" };
  const REGION_ROWS = ["top", "middle", "bottom"];
  const REGION_COLUMNS = ["left", "centre", "right"];

  function explain(shown) {
    state.explained.shown = shown;
    if (!inside.open) {
      return;
    }
    if (state.explained.inFlight) {
      state.explained.again = true;
      return;
    }
    requestExplanations();
  }

  async function explainedBy(model, input) {
    const response = await fetch(`/api/predict/pixels?explain=true&model=${model}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pixels: input }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(`${response.status}: ${body.detail || response.statusText}`);
    }
    return { model, answer: body };
  }

  async function requestExplanations() {
    const shown = state.explained.shown;
    if (!shown) {
      return;
    }
    state.explained.inFlight = true;
    const models = compareSeed.checked ? ["default", "seed"] : ["default"];
    try {
      const explained = await Promise.all(models.map((model) => explainedBy(model, shown.input)));
      if (state.explained.shown === shown) {
        insideModels.replaceChildren(...explained.map((one) => explainedView(one, shown)));
        insideStatus.textContent = "";
      }
    } catch (error) {
      insideStatus.textContent =
        error instanceof TypeError
          ? "Cannot reach the server to look inside."
          : `The server could not explain it (${error.message}).`;
    } finally {
      state.explained.inFlight = false;
      if (state.explained.again) {
        state.explained.again = false;
        requestExplanations();
      }
    }
  }

  function colours() {
    const styles = getComputedStyle(document.documentElement);
    const value = (name) => styles.getPropertyValue(name).trim();
    return { for: value("--bar-top"), against: value("--danger"), text: value("--text") };
  }

  function rgb(colour) {
    // A CSS hex colour as [r, g, b].
    const hex = colour.replace("#", "");
    return [0, 2, 4].map((start) => parseInt(hex.slice(start, start + 2), 16));
  }

  function paint(canvas, values, colourOf) {
    // One pixel per value, its colour [r, g, b, a] from `colourOf(value, index)`.
    const drawing = canvas.getContext("2d");
    const image = drawing.createImageData(canvas.width, canvas.height);
    values.forEach((value, index) => image.data.set(colourOf(value, index), index * 4));
    drawing.putImageData(image, 0, 0);
  }

  function grey(value) {
    const level = Math.round(value * 255);
    return [level, level, level, 255];
  }

  function signedColour(scale, forColour, againstColour) {
    // Positive values in one colour, negative in the other, as strong as their size.
    return (value) => {
      const strength = Math.min(1, Math.abs(value) / scale);
      return [...(value >= 0 ? forColour : againstColour), Math.round(strength * 255)];
    };
  }

  function regionOf(pixels, sign) {
    // Where, in thirds of the field, the terms of one sign are strongest, in words.
    const sums = new Array(9).fill(0);
    pixels.flat().forEach((value, index) => {
      if (Math.sign(value) === sign) {
        const row = Math.min(2, Math.floor(Math.floor(index / 28) / 9.34));
        const column = Math.min(2, Math.floor((index % 28) / 9.34));
        sums[row * 3 + column] += value;
      }
    });
    const best = sums.reduce((chosen, sum, index) => (sign * sum > sign * sums[chosen] ? index : chosen), 0);
    if (sums[best] === 0) {
      return "nowhere";
    }
    const row = REGION_ROWS[Math.floor(best / 3)];
    const column = REGION_COLUMNS[best % 3];
    return row === "middle" && column === "centre" ? "the centre" : `the ${row} ${column}`;
  }

  function explainedView({ model, answer }, { input, subject }) {
    const view = explainedTemplate.content.firstElementChild.cloneNode(true);
    const explanation = answer.explanation;
    const palette = colours();
    const forColour = rgb(palette.for);
    const againstColour = rgb(palette.against);
    view.dataset.model = model;
    const title = subject ? `${MODEL_TITLES[model]}, on ${subject}` : MODEL_TITLES[model];
    view.setAttribute("aria-label", title);
    view.querySelector(".explained-title").textContent =
      `${title}: ${answer.digit}, ${percent(answer.confidence)}`;

    const flat = input.flat();
    const inked = flat.filter((value) => value > 0).length;
    const xGrid = view.querySelector(".x-grid");
    paint(xGrid, flat, grey);
    xGrid.setAttribute("aria-label", `The input: ${inked} of 784 pixels inked`);
    paint(view.querySelector(".x-vector"), flat, grey);

    const hidden = explanation.hidden;
    const strongest = Math.max(...hidden, 1e-6);
    const hiddenGrid = view.querySelector(".hidden-grid");
    paint(hiddenGrid, hidden, signedColour(strongest, forColour, againstColour));
    const hiddenText = `${explanation.active_units} of 512 units active (above 0); the strongest at ${strongest.toFixed(2)}.`;
    hiddenGrid.setAttribute("aria-label", `The 512 hidden activations: ${hiddenText}`);
    view.querySelector(".hidden-text").textContent = hiddenText;

    const logits = explanation.logits;
    const largest = Math.max(...logits.map(Math.abs), 1e-6);
    view.querySelector(".logits").replaceChildren(
      ...logits.map((logit, digit) => {
        const item = document.createElement("li");
        item.className = `logit${digit === answer.digit ? " top" : ""}`;
        item.style.setProperty("--size", (Math.abs(logit) / largest).toFixed(3));
        item.classList.add(logit >= 0 ? "positive" : "negative");
        const label = document.createElement("span");
        label.className = "logit-label";
        label.textContent = String(digit);
        const track = document.createElement("span");
        track.className = "logit-track";
        track.append(document.createElement("span"));
        const value = document.createElement("span");
        value.className = "logit-value";
        value.textContent = logit.toFixed(2);
        item.append(label, track, value);
        item.setAttribute("aria-label", `${digit}: logit ${logit.toFixed(2)}`);
        return item;
      }),
    );
    view.querySelector(".softmax-text").textContent =
      `Turns the logits into probabilities that add up to 1: ${answer.digit} at ${percent(answer.confidence)}` +
      (model === "default" ? " (all ten in the chart above)." : ".");

    const [forAnswer, forRunnerUp] = explanation.evidence;
    const answerButton = view.querySelector(".evidence-answer");
    const runnerUpButton = view.querySelector(".evidence-runner-up");
    answerButton.textContent = `Why ${forAnswer.digit}`;
    runnerUpButton.textContent = `Why not ${forRunnerUp.digit}`;
    const showEvidence = (runnerUp) => {
      state.explained.runnerUp[model] = runnerUp;
      answerButton.setAttribute("aria-pressed", String(!runnerUp));
      runnerUpButton.setAttribute("aria-pressed", String(runnerUp));
      const terms = runnerUp ? forRunnerUp : forAnswer;
      const pixels = terms.pixels.flat();
      const scale = Math.max(...pixels.map(Math.abs), 1e-6);
      const map = view.querySelector(".evidence-map");
      paint(map, pixels, signedColour(scale, forColour, againstColour));
      const sum = (sign) => pixels.filter((value) => Math.sign(value) === sign).reduce((a, b) => a + b, 0);
      const logit = logits[terms.digit];
      const text =
        `The logit of ${terms.digit} is ${logit.toFixed(2)}: pixels for it add ${sum(1).toFixed(2)}, ` +
        `pixels against it ${sum(-1).toFixed(2)}, the biases ${(terms.hidden_bias + terms.output_bias).toFixed(2)}. ` +
        `Most for it: ${regionOf(terms.pixels, 1)}; most against it: ${regionOf(terms.pixels, -1)}.`;
      map.setAttribute("aria-label", `Each pixel's part of the logit of ${terms.digit}. ${text}`);
      view.querySelector(".evidence-text").textContent = text;
    };
    answerButton.addEventListener("click", () => showEvidence(false));
    runnerUpButton.addEventListener("click", () => showEvidence(true));
    showEvidence(Boolean(state.explained.runnerUp[model]));

    view.querySelector(".units").replaceChildren(
      ...explanation.units.map((unit) => {
        const item = document.createElement("li");
        const weights = document.createElement("canvas");
        weights.width = weights.height = 28;
        const flatWeights = unit.weights.flat();
        const scale = Math.max(...flatWeights.map(Math.abs), 1e-6);
        paint(weights, flatWeights, signedColour(scale, forColour, againstColour));
        const caption = `Unit ${unit.unit}: active at ${unit.activation.toFixed(2)}, adds ${unit.contribution.toFixed(2)}`;
        weights.setAttribute("role", "img");
        weights.setAttribute("aria-label", `What unit ${unit.unit} looks for`);
        const text = document.createElement("span");
        text.textContent = caption;
        item.append(weights, text);
        return item;
      }),
    );
    return view;
  }

  inside.addEventListener("toggle", () => {
    if (inside.open) {
      if (state.explained.shown) {
        explain(state.explained.shown);
      } else {
        insideStatus.textContent = "Draw to look inside the network.";
      }
    }
  });
  compareSeed.addEventListener("change", () => explain(state.explained.shown));

  // ---- wiring ------------------------------------------------------------------------------

  function setBrush(width) {
    brushInput.value = String(width);
    brushValue.textContent = brushInput.value;
  }

  pad.addEventListener("pointerdown", startStroke);
  pad.addEventListener("pointermove", extendStroke);
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("contextmenu", (event) => event.preventDefault());

  modeButtons.forEach((button) => {
    button.addEventListener("click", () => {
      if (button.dataset.mode !== state.mode) {
        setMode(button.dataset.mode);
      }
    });
  });
  undoButton.addEventListener("click", undo);
  clearButton.addEventListener("click", clearAll);
  uploadInput.addEventListener("change", () => useFile(uploadInput.files[0]));

  numberDigits.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-index]");
    if (button) {
      state.chosen = true;
      selectDigit(Number(button.dataset.index), true);
    }
  });
  numberDigits.addEventListener("keydown", (event) => {
    const steps = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 };
    if (event.key in steps && state.reading) {
      event.preventDefault();
      state.chosen = true;
      selectDigit(state.selected + steps[event.key], true);
    } else if ((event.key === "Home" || event.key === "End") && state.reading) {
      event.preventDefault();
      state.chosen = true;
      selectDigit(event.key === "Home" ? 0 : state.reading.digits.length - 1, true);
    }
  });

  brushInput.addEventListener("input", () => {
    setBrush(brushInput.value);
    try {
      localStorage.setItem(BRUSH_STORAGE_KEY, brushInput.value);
    } catch {
      // Storage may be disabled (private browsing): the brush simply is not remembered.
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && hasContent()) {
      event.preventDefault();
      clearAll();
    } else if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
      if (event.target instanceof HTMLInputElement && event.target.type !== "range") {
        return; // undo inside a text field belongs to the field
      }
      event.preventDefault();
      if (hasContent()) {
        undo();
      }
    }
  });

  ["dragenter", "dragover"].forEach((type) =>
    padArea.addEventListener(type, (event) => {
      event.preventDefault();
      padArea.classList.add("dragging");
    }),
  );
  ["dragleave", "drop"].forEach((type) =>
    padArea.addEventListener(type, () => padArea.classList.remove("dragging")),
  );
  padArea.addEventListener("drop", (event) => {
    event.preventDefault();
    useFile(event.dataTransfer.files[0]);
  });

  new ResizeObserver(() => {
    if (state.reading) {
      drawBoxes();
    }
  }).observe(boxes);

  // The ink follows the colour scheme; strokes already drawn are redrawn in the new colour.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    render();
    if (state.reading) {
      drawBoxes();
    }
  });

  try {
    const savedBrush = localStorage.getItem(BRUSH_STORAGE_KEY);
    if (savedBrush) {
      setBrush(savedBrush);
    }
  } catch {
    // No storage: keep the default brush.
  }
  let savedMode = "digit";
  try {
    savedMode = localStorage.getItem(MODE_STORAGE_KEY) === "number" ? "number" : "digit";
  } catch {
    // No storage: one digit, as always.
  }
  setMode(savedMode, { announce: false });
  showCorrectionCount();
})();
