-- wrk script: GET one page (the URL given to wrk) over and over, with the headers given by -H
-- (the session cookie of a logged-in user). Only 200 with a non-empty body counts as ok:
-- a 302 to /login, a 404 or an empty 200 is a failure, so a lost session cannot pass for speed.
-- done() prints one line "WRK_JSON {...}" like rate.lua does.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, c4xx, c5xx, cother = 0, 0, 0, 0
  sample = ""
end

function response(status, headers, body)
  if status == 200 and body ~= nil and #body > 0 then
    ok = ok + 1
  else
    if status >= 500 then c5xx = c5xx + 1
    elseif status >= 400 then c4xx = c4xx + 1
    else cother = cother + 1 end
    if sample == "" then sample = status .. " " .. (headers["Location"] or "") .. " " .. string.sub(body or "", 1, 200) end
  end
end

local function jstr(s)
  s = string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local t_ok, t_4, t_5, t_o, samples = 0, 0, 0, 0, {}
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_4 = t_4 + t:get("c4xx")
    t_5 = t_5 + t:get("c5xx")
    t_o = t_o + t:get("cother")
    local s = t:get("sample")
    if s ~= "" then table.insert(samples, jstr(s)) end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"ok":%d,"status_4xx":%d,"status_5xx":%d,' ..
    '"status_other":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"error_samples":[%s]}\n',
    summary.duration, summary.requests, summary.bytes, t_ok, t_4, t_5, t_o,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(samples, ",")))
end
