-- wrk script: POST one counter-tablet rating per request (or the same request to the bare endpoint).
--   wrk ... URL -s tablet.lua -- FILE THREADS [bare]
-- FILE has one request a line, "PATH <TAB> COOKIE <TAB> IDEMPOTENCY-KEY <TAB> JSON body", written by
-- tests/bench/bench_tablet.py: a paired tablet's secret cookie, a distinct unrated record at its
-- window each. Thread TID takes the lines i with i % THREADS == TID and builds every request once,
-- in init(); with "bare" every request goes to /bench/ping instead (same headers and body). A thread
-- that runs out starts over (the same record again: refused as already rated, counted as a failure,
-- so the bench's sizing shows). done() prints one line "WRK_JSON {...}" like rate.lua does.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  local bare = args[3] == "bare"
  reqs = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      local target, cookie, key, body = string.match(line, "^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {
        ["Content-Type"] = "application/json",
        ["X-Terminal-Request"] = "1",
        ["Cookie"] = cookie,
        ["Idempotency-Key"] = key,
      }
      table.insert(reqs, wrk.format("POST", bare and "/bench/ping" or target, headers, body))
    end
    i = i + 1
  end
  loaded = #reqs
  sent = 0
  common.reset()
end

function request()
  sent = sent + 1
  return reqs[(sent - 1) % loaded + 1]
end

function response(status, headers, body)
  common.count(status >= 200 and status < 300, status, string.sub(body or "", 1, 300))
end

function done(summary, latency, requests)
  common.done(summary, latency)
end
