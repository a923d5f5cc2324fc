/* reclab (reclab/report/asv_offline.py): asv's pages read their data (info.json, index.json,
   graphs/..., regressions.json) with XMLHttpRequest, which a browser refuses to a page opened from a
   file. Opened from a file, the page gets the same data from asv-data.js, which the offline step
   writes beside index.html at each publish; served over HTTP (asv preview, any web server) this
   script does nothing. Loaded right after jQuery, before asv's own scripts. */
(function ($) {
    "use strict";
    if (window.location.protocol !== "file:") {
        return;
    }
    var loading = null;

    function siteData() {
        if (loading === null) {
            loading = $.Deferred();
            var script = document.createElement("script");
            script.src = "asv-data.js";
            script.onload = function () { loading.resolve(window.ASV_DATA || {}); };
            script.onerror = function () { loading.reject(); };
            document.head.appendChild(script);
        }
        return loading.promise();
    }

    $.ajaxTransport("+*", function (options) {
        var path = options.url.split("#")[0].split("?")[0];
        if (/^[a-z][a-z0-9+.-]*:|^\//i.test(path)) {
            return undefined;  /* not a file of the site: left to jQuery (and refused by the browser) */
        }
        var aborted = false;
        return {
            send: function (headers, complete) {
                siteData().done(function (data) {
                    if (aborted) {
                        return;
                    }
                    var key = decodeURIComponent(path.replace(/^\.\//, ""));
                    if (Object.prototype.hasOwnProperty.call(data, key)) {
                        complete(200, "success", {text: JSON.stringify(data[key])});
                    } else if (key === "swallow.ico") {
                        complete(200, "success", {text: ""});  /* asv's "is the server still up" probe */
                    } else {
                        complete(404, "not found");
                    }
                }).fail(function () {
                    if (!aborted) {
                        complete(404, "asv-data.js not found");
                    }
                });
            },
            abort: function () { aborted = true; }
        };
    });
}(jQuery));
