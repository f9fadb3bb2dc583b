-- Shared by the wrk scripts (rate.lua, sms.lua, pages.lua): thread bookkeeping, status
-- counting and the one line "WRK_JSON {...}" that tests/bench/loadgen.py reads. Loaded with
--   package.path = <this directory>/?.lua;...  local common = require("common")
-- Each wrk thread has its own Lua state, so the counters below are per-thread globals that
-- done() (in the main state) sums with thread:get().

local M = {threads = {}}
local next_thread = 0

function M.setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(M.threads, thread)
end

function M.reset()
  ok, c4xx, c5xx, cother = 0, 0, 0, 0
  sample = ""
end

-- One response: ``good`` whether it counts as ok; otherwise counted by status class and the
-- first one kept as a sample (status and ``detail``).
function M.count(good, status, detail)
  if good then
    ok = ok + 1
    return
  end
  if status >= 500 then c5xx = c5xx + 1
  elseif status >= 400 then c4xx = c4xx + 1
  else cother = cother + 1 end
  if sample == "" then sample = status .. " " .. detail end
end

local function jstr(s)
  s = string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
  return '"' .. s .. '"'
end

-- The WRK_JSON line; ``extras`` names more per-thread counters to sum into it.
function M.done(summary, latency, extras)
  local t_ok, t_4, t_5, t_o, samples, sums = 0, 0, 0, 0, {}, {}
  extras = extras or {}
  for _, t in ipairs(M.threads) do
    t_ok = t_ok + t:get("ok")
    t_4 = t_4 + t:get("c4xx")
    t_5 = t_5 + t:get("c5xx")
    t_o = t_o + t:get("cother")
    for _, name in ipairs(extras) do sums[name] = (sums[name] or 0) + t:get(name) end
    local s = t:get("sample")
    if s ~= "" then table.insert(samples, jstr(s)) end
  end
  local more = ""
  for _, name in ipairs(extras) do more = more .. string.format(',"%s":%d', name, sums[name] or 0) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"ok":%d,"status_4xx":%d,"status_5xx":%d,' ..
    '"status_other":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"error_samples":[%s]%s}\n',
    summary.duration, summary.requests, summary.bytes, t_ok, t_4, t_5, t_o,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(samples, ","), more))
end

return M
