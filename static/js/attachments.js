// 附件上传 (templates/attachments/_panel.html and any form with class "attachment-upload").
// Without JavaScript the form posts as it is. With it, files go one by one (each within the 20 MB
// limit), each answer is shown in Chinese, and the page reloads to show the new thumbnails.
// A form with data-resize="2560" first scales JPEG/PNG photos down to that long side in the browser
// (the phone's upload stays small); the server re-encodes and strips them either way.
(function () {
  "use strict";

  function status(form, text, bad) {
    var box = form.querySelector(".upload-status");
    if (!box) { return; }
    var line = document.createElement("div");
    line.textContent = text;
    if (bad) { line.className = "text-danger"; }
    box.appendChild(line);
  }

  function resized(file, longSide) {
    if (!longSide || !window.createImageBitmap || !/^image\/(jpeg|png)$/.test(file.type)) {
      return Promise.resolve(file);
    }
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      var scale = longSide / Math.max(bitmap.width, bitmap.height);
      if (scale >= 1) { return file; }
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          resolve(blob ? new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" }) : file);
        }, "image/jpeg", 0.85);
      });
    }).catch(function () { return file; });
  }

  function send(form, file) {
    var data = new FormData(form);
    data.delete("file");
    data.append("file", file, file.name);
    return fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" }
    }).then(function (response) {
      return response.json().catch(function () {
        return { saved: [], errors: [response.status === 413 ? "文件过大：每个附件不能超过20MB。" : "上传失败，请稍后重试"] };
      });
    }).catch(function () {
      return { saved: [], errors: ["网络中断，上传失败，请稍后重试"] };
    });
  }

  function upload(form, event) {
    var input = form.querySelector("input[type=file]");
    if (input && input.files && !input.files.length) {
      event.preventDefault();
      status(form, "请选择要上传的文件", true);
      return;
    }
    if (!input || !input.files || !window.fetch || !window.FormData) { return; }
    event.preventDefault();
    var files = Array.prototype.slice.call(input.files);
    var limit = parseInt(form.getAttribute("data-max-bytes"), 10) || 20 * 1024 * 1024;
    var longSide = parseInt(form.getAttribute("data-resize"), 10) || 0;
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    var saved = 0;
    var failed = 0;
    var chain = Promise.resolve();
    files.forEach(function (original) {
      chain = chain.then(function () {
        return resized(original, longSide).then(function (file) {
          if (file.size > limit) {
            status(form, original.name + "：文件过大，每个附件不能超过20MB", true);
            failed += 1;
            return null;
          }
          status(form, "正在上传 " + original.name + " …");
          return send(form, file).then(function (answer) {
            saved += (answer.saved || []).length;
            (answer.errors || []).forEach(function (message) {
              failed += 1;
              status(form, original.name + "：" + message, true);
            });
            if ((answer.saved || []).length) { status(form, original.name + "：已上传"); }
          });
        });
      });
    });
    chain.then(function () {
      if (button) { button.disabled = false; }
      input.value = "";
      if (saved && !failed) { window.location.reload(); }
      if (saved && failed) { status(form, "其余文件已上传，刷新页面即可看到。"); }
    });
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input || !input.classList || !input.classList.contains("attachment-file")) { return; }
    var form = input.form;
    var shown = form && form.querySelector(".attachment-chosen");
    if (!shown) { return; }
    var names = Array.prototype.map.call(input.files || [], function (f) { return f.name; });
    shown.textContent = names.length ? names.join("、") : "未选择文件";
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.classList && form.classList.contains("attachment-upload")) {
      upload(form, event);
    }
  });
})();
