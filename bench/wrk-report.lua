-- wrk script for bench/http.mjs: optional pipelining, and a machine-readable report.
--
--   wrk -t1 -c100 -d10 -s bench/wrk-report.lua http://127.0.0.1:P/ -- [depth]
--
-- depth > 1 sends that many GET requests in one write and waits for all their responses
-- before the next write (wrk's pipelining: one latency sample per batch, not per request).
-- depth 1 leaves wrk on its static request, so the script adds no Lua call per request.
--
-- done() prints one line "c1m-wrk {json}" on stdout after wrk's own text: request and byte
-- counts, socket errors, latency in microseconds, and wrk's own CPU time (from /proc/self/stat,
-- read while wrk is still running: all its threads have been joined and counted by then).

init = function(args)
  local depth = tonumber(args[1] or "1") or 1
  if depth > 1 then
    local batch = {}
    for i = 1, depth do
      batch[i] = wrk.format()
    end
    local req = table.concat(batch)
    request = function()
      return req
    end
  end
end

local function cpu_ticks()
  local f = io.open("/proc/self/stat", "r")
  if not f then
    return -1
  end
  local s = f:read("*a")
  f:close()
  -- comm may contain spaces: fields start after the last ')'; utime and stime are the 12th and
  -- 13th fields from there (the 14th and 15th of the line).
  local rest = s:match(".*%)%s+(.*)")
  local fields = {}
  for x in rest:gmatch("%S+") do
    fields[#fields + 1] = x
  end
  return tonumber(fields[12]) + tonumber(fields[13])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'c1m-wrk {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"lat_us":{"mean":%.1f,"stdev":%.1f,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},' ..
      '"cpu_ticks":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    cpu_ticks()))
end
