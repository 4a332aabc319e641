-- Prints wrk's totals as one JSON line (the same shape as bench/hload.c) so that the
-- harness reads numbers, not wrk's human summary. Errors = connect+read+write+timeout;
-- non2xx = responses with a status >= 400 (wrk's "status" errors).
function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format('{"requests":%d,"non2xx":%d,"errors":%d,"seconds":%.3f,"rps":%.1f}\n',
      summary.requests, e.status, e.connect + e.read + e.write + e.timeout, secs, summary.requests / secs))
end
