/* The door's check-in: where the browser can read QR codes (BarcodeDetector, with a camera),
   a button scans the person's code with the device's camera and sends it; everywhere else the
   code is typed, as the page works without this. */
(function () {
  "use strict";

  function start(form, field, button, video, status) {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      button.hidden = true;
      video.play();
      var timer = window.setInterval(function () {
        detector.detect(video).then(function (codes) {
          if (codes.length) {
            window.clearInterval(timer);
            stream.getTracks().forEach(function (track) { track.stop(); });
            field.value = codes[0].rawValue;
            form.requestSubmit();
          }
        }).catch(function () {});
      }, 300);
    }).catch(function () {
      status.textContent = status.dataset.refused;
    });
  }

  function prepare() {
    var form = document.getElementById("check-in-form");
    if (!form || form.dataset.ready || !("BarcodeDetector" in window) || !navigator.mediaDevices) {
      return;
    }
    form.dataset.ready = "1";
    var field = document.getElementById("code");
    var button = document.getElementById("scan");
    var video = document.getElementById("scanner");
    var status = document.getElementById("scan-status");
    button.hidden = false;
    button.addEventListener("click", function () { start(form, field, button, video, status); });
  }

  document.addEventListener("DOMContentLoaded", prepare);
  document.addEventListener("htmx:afterSettle", prepare);
})();
