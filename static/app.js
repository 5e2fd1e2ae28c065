// Digit Canvas: draw on the pad, and the REST API says which digit it is.
"use strict";

(() => {
  const PREDICT_URL = "/api/predict?include_input=true";
  const DRAWING_INTERVAL_MS = 150; // while a stroke goes on: often, not at every pointer move
  const BRUSH_STORAGE_KEY = "digit-canvas.brush";

  const pad = document.getElementById("pad");
  const padArea = document.getElementById("pad-area");
  const context = pad.getContext("2d");
  const undoButton = document.getElementById("undo");
  const clearButton = document.getElementById("clear");
  const uploadInput = document.getElementById("upload");
  const brushInput = document.getElementById("brush");
  const brushValue = document.getElementById("brush-value");
  const digitView = document.getElementById("digit");
  const confidenceView = document.getElementById("confidence");
  const statusView = document.getElementById("status");
  const bars = Array.from(document.querySelectorAll("#chart .bar"));
  const modelInput = document.getElementById("model-input").getContext("2d");

  const state = {
    strokes: [], // {width, points: [{x, y}]}, in canvas pixels
    activeStroke: null,
    activePointer: null,
    upload: null, // {file, bitmap}: an image chosen or dropped instead of drawing
    pending: null, // AbortController of the request in flight
    requestNumber: 0,
    debounceTimer: 0,
    renderQueued: false,
  };

  // ---- drawing -----------------------------------------------------------------------------

  function inkColour() {
    return getComputedStyle(document.documentElement).getPropertyValue("--ink").trim() || "#000";
  }

  function hasContent() {
    return state.strokes.length > 0 || state.upload !== null;
  }

  function drawStroke(stroke) {
    const points = stroke.points;
    context.lineWidth = stroke.width;
    if (points.length === 1) {
      context.beginPath();
      context.arc(points[0].x, points[0].y, stroke.width / 2, 0, 2 * Math.PI);
      context.fill();
      return;
    }
    // Quadratic curves through the midpoints: smooth strokes from coarse pointer samples.
    context.beginPath();
    context.moveTo(points[0].x, points[0].y);
    for (let i = 1; i < points.length - 1; i += 1) {
      const midX = (points[i].x + points[i + 1].x) / 2;
      const midY = (points[i].y + points[i + 1].y) / 2;
      context.quadraticCurveTo(points[i].x, points[i].y, midX, midY);
    }
    const last = points[points.length - 1];
    context.lineTo(last.x, last.y);
    context.stroke();
  }

  function drawUpload(bitmap) {
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    context.drawImage(bitmap, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
  }

  function render() {
    state.renderQueued = false;
    context.clearRect(0, 0, pad.width, pad.height);
    if (state.upload && state.upload.bitmap) {
      drawUpload(state.upload.bitmap);
    }
    const colour = inkColour();
    context.strokeStyle = colour;
    context.fillStyle = colour;
    context.lineCap = "round";
    context.lineJoin = "round";
    state.strokes.forEach(drawStroke);
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
    state.activePointer = null;
    state.activeStroke = null;
    queueRender();
    predictNow();
  }

  function undo() {
    if (state.strokes.length > 0) {
      state.strokes.pop();
    } else {
      state.upload = null;
    }
    afterEdit();
  }

  function clearAll() {
    state.strokes = [];
    state.upload = null;
    uploadInput.value = "";
    afterEdit();
  }

  function afterEdit() {
    render();
    if (hasContent()) {
      predictNow();
    } else {
      cancelPrediction();
      showEmpty("");
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
    state.strokes = [];
    state.upload = { file, bitmap };
    afterEdit();
  }

  // ---- prediction --------------------------------------------------------------------------

  function cancelPrediction() {
    clearTimeout(state.debounceTimer);
    state.debounceTimer = 0;
    state.requestNumber += 1; // any answer still on its way is now stale
    if (state.pending) {
      state.pending.abort();
      state.pending = null;
    }
  }

  function predictSoon() {
    // At most one prediction per interval while drawing, quiet for screen readers.
    if (!state.debounceTimer) {
      state.debounceTimer = setTimeout(() => predict(false), DRAWING_INTERVAL_MS);
    }
  }

  function predictNow() {
    clearTimeout(state.debounceTimer);
    state.debounceTimer = 0;
    predict(true);
  }

  function drawingBlob() {
    // An untouched upload goes as it is; anything drawn goes as the canvas, transparent
    // background and all: the server finds the strokes either way.
    if (state.upload && state.strokes.length === 0) {
      return Promise.resolve(state.upload.file);
    }
    if (state.renderQueued) {
      render(); // the last pointer samples are not on the canvas until the next frame
    }
    return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  }

  async function predict(announce) {
    if (!hasContent()) {
      return;
    }
    cancelPrediction();
    const requestNumber = state.requestNumber;
    const controller = new AbortController();
    state.pending = controller;
    try {
      const blob = await drawingBlob();
      const response = await fetch(PREDICT_URL, {
        method: "POST",
        headers: { "Content-Type": blob.type || "application/octet-stream" },
        body: blob,
        signal: controller.signal,
      });
      const body = await response.json().catch(() => ({}));
      if (requestNumber !== state.requestNumber) {
        return; // the drawing changed meanwhile; a newer answer is coming
      }
      if (response.ok) {
        showPrediction(body, announce);
      } else if (response.status === 422) {
        showEmpty(body.detail ? `Nothing to recognise yet: ${body.detail}.` : "Draw a digit.");
      } else {
        showError(body.detail || `The server answered ${response.status}.`);
      }
    } catch (error) {
      if (error.name !== "AbortError" && requestNumber === state.requestNumber) {
        showError("Cannot reach the server. Check the connection; your drawing is kept.");
      }
    } finally {
      if (state.pending === controller) {
        state.pending = null;
      }
    }
  }

  // ---- results -----------------------------------------------------------------------------

  function percent(probability) {
    const value = probability * 100;
    if (value >= 99.95) return "100%";
    if (value < 0.1) return value === 0 ? "0%" : "<0.1%";
    return `${value.toFixed(1)}%`;
  }

  function setStatus(message, isError) {
    statusView.textContent = message;
    statusView.classList.toggle("error", Boolean(isError));
  }

  function showPrediction(result, announce) {
    result.probabilities.forEach((probability, digit) => {
      const bar = bars[digit];
      bar.querySelector(".bar-fill").style.setProperty("--p", probability.toFixed(4));
      bar.querySelector(".bar-value").textContent = percent(probability);
      bar.classList.toggle("top", digit === result.digit);
      bar.setAttribute("aria-label", `${digit}: ${percent(probability)}`);
    });
    digitView.textContent = String(result.digit);
    confidenceView.innerHTML = "";
    const strong = document.createElement("strong");
    strong.textContent = percent(result.confidence);
    confidenceView.append(strong, ` sure it is a ${result.digit}`);
    if (announce) {
      setStatus(`Prediction: ${result.digit}, ${percent(result.confidence)} confident.`, false);
    }
    if (result.input) {
      showModelInput(result.input);
    }
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
    bars.forEach((bar) => {
      bar.querySelector(".bar-fill").style.setProperty("--p", "0");
      bar.querySelector(".bar-value").textContent = "–";
      bar.classList.remove("top");
      bar.removeAttribute("aria-label");
    });
    digitView.textContent = "?";
    confidenceView.textContent = "Draw to see a prediction";
    modelInput.fillStyle = "#000";
    modelInput.fillRect(0, 0, 28, 28);
  }

  function showEmpty(message) {
    resetResults();
    setStatus(message, false);
  }

  function showError(message) {
    setStatus(message, true);
  }

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

  undoButton.addEventListener("click", undo);
  clearButton.addEventListener("click", clearAll);
  uploadInput.addEventListener("change", () => useFile(uploadInput.files[0]));

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

  // The ink follows the colour scheme; strokes already drawn are redrawn in the new colour.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", render);

  try {
    const savedBrush = localStorage.getItem(BRUSH_STORAGE_KEY);
    if (savedBrush) {
      setBrush(savedBrush);
    }
  } catch {
    // No storage: keep the default brush.
  }
  resetResults();
  render();
})();
