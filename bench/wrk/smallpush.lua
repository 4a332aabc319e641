-- Small image pushes by concurrent clients: run as `wrk -tN -cN` so that each wrk thread
-- owns exactly one connection and request()/response() strictly alternate per thread.
-- Each client pushes to its own repository small/c<id>, image after image, as clients do
-- it minus the HEAD probes (wrk 4.1 cannot parse HEAD responses that carry
-- Content-Length): POST upload, PUT layer (monolithic), POST, PUT config, PUT manifest.
-- Blob bytes are made here; their digests come from <dir>/c<id>.txt, written by the harness
-- (bench/lib/workloads.py) with the same formulas: one line "<layer digest> <config digest>"
-- per image. Args after `--`: <dir> <run id>.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local images, run, n, step, loc = {}, "", 0, 0, nil
pushes, errors = 0, 0

function init(args)
   run = args[2]
   for line in io.lines(args[1] .. "/c" .. id .. ".txt") do
      local l, c = line:match("^(%S+) (%S+)$")
      table.insert(images, {l, c})
   end
end

local function layer(k)
   local s = string.format("zinc-bench %s client %d image %d\n", run, id, k)
   return s .. string.rep(".", 1024 - #s)
end

local function config(ld)
   return string.format('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}', ld)
end

local function manifest(img, k)
   return string.format('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' ..
      '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},' ..
      '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":1024}]}',
      img[2], #config(img[1]), img[1])
end

local function put_blob(digest, body)
   local sep = loc:find("?", 1, true) and "&" or "?"
   return wrk.format("PUT", loc .. sep .. "digest=" .. digest, {["Content-Type"] = "application/octet-stream"}, body)
end

function request()
   local k = n % #images
   local img = images[k + 1]
   local repo = "/v2/small/c" .. id
   if step == 0 or step == 2 then
      return wrk.format("POST", repo .. "/blobs/uploads/", nil, "")
   elseif step == 1 then
      return put_blob(img[1], layer(k))
   elseif step == 3 then
      return put_blob(img[2], config(img[1]))
   end
   return wrk.format("PUT", repo .. "/manifests/t" .. n,
      {["Content-Type"] = "application/vnd.oci.image.manifest.v1+json"}, manifest(img, k))
end

local expect = {[0] = 202, 201, 202, 201, 201}

function response(status, headers, body)
   if status ~= expect[step] then
      errors = errors + 1
      step, n = 0, n + 1
      return
   end
   if step == 0 or step == 2 then
      loc = nil
      for name, value in pairs(headers) do
         if name:lower() == "location" then loc = value:match("^https?://[^/]+(/.*)$") or value end
      end
      if loc == nil then
         errors = errors + 1
         step, n = 0, n + 1
         return
      end
   end
   if step == 4 then
      pushes = pushes + 1
      step, n = 0, n + 1
   else
      step = step + 1
   end
end

function done(summary, latency, requests)
   local p, e = 0, 0
   for _, t in ipairs(threads) do
      p = p + t:get("pushes")
      e = e + t:get("errors")
   end
   local secs = summary.duration / 1e6
   e = e + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
   io.write(string.format('{"requests":%d,"pushes":%d,"non2xx":0,"errors":%d,"seconds":%.3f,"rps":%.1f}\n',
      p, p, e, secs, p / secs))
end
