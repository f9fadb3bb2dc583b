-- wrk script: POST one rating (or the same body to the bare endpoint) per request.
--   wrk ... URL -s rate.lua -- TOKEN PREFIX START COUNT THREADS
-- Every request names a distinct pool record (PREFIX .. %08d, from START, COUNT in all, split
-- between the THREADS) and carries a unique Idempotency-Key. Levels follow the real mix
-- (99.5 % good; a bad one carries a reason and opens a ticket). done() prints one line
-- "WRK_JSON {...}" with the status counts of every thread and the latency percentiles.

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  token = args[1]
  prefix = args[2]
  local start = tonumber(args[3])
  local count = tonumber(args[4])
  local nthreads = tonumber(args[5])
  per = math.floor(count / nthreads)
  first = start + tid * per
  sent = 0
  ok, c4xx, c5xx, cother = 0, 0, 0, 0
  sample = ""
  math.randomseed(os.time() * 1000 + tid)
end

local channels = {"hall_tablet", "hall_tablet", "hall_tablet", "mobile", "pc", "qr"}

function request()
  local n = first + (sent % per)
  sent = sent + 1
  local r = math.random()
  local level, reasons
  if r < 0.003 then level, reasons = 2, ',"reasons":[213],"comment":"窗口人员业务不熟练"'
  elseif r < 0.005 then level, reasons = 1, ',"reasons":[115],"comment":"态度差"'
  elseif r < 0.035 then level, reasons = 3, ''
  elseif r < 0.145 then level, reasons = 4, ''
  else level, reasons = 5, ''
  end
  local body = string.format('{"record_number":"%s%08d","level":%d,"level_scheme":"score","channel":"%s"%s}',
                             prefix, n, level, channels[math.random(#channels)], reasons)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = string.format("bench-%d-%d-%d", tid, n, sent),
  }
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    if status >= 500 then c5xx = c5xx + 1
    elseif status >= 400 then c4xx = c4xx + 1
    else cother = cother + 1 end
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 300) end
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
