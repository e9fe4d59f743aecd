// The scan page works without this: a scanner types into the focused field.
// Where the browser can read barcodes from the camera, offer that too.
(function () {
  "use strict";
  var button = document.getElementById("camera");
  var video = document.getElementById("preview");
  var form = document.getElementById("scan-form");
  var field = document.getElementById("code");
  if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" } })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        return video.play().then(function () {
          var look = function () {
            detector.detect(video).then(function (codes) {
              if (codes.length > 0) {
                stream.getTracks().forEach(function (t) { t.stop(); });
                field.value = codes[0].rawValue;
                form.submit();
              } else {
                window.requestAnimationFrame(look);
              }
            }, function () { window.requestAnimationFrame(look); });
          };
          look();
        });
      })
      .catch(function () {
        button.textContent = "The camera is not available";
        button.disabled = true;
      });
  });
})();
