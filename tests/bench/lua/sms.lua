-- wrk script: POST one precomputed Twilio inbound SMS per request (or the same request to the bare endpoint).
--   wrk ... URL -s sms.lua -- FILE THREADS
-- FILE has one request a line, "MessageSid <TAB> X-Twilio-Signature <TAB> form body", written by
-- tests/bench/bench_sms.py (LuaJIT in wrk has no HMAC, so the signatures are computed there). Thread
-- TID takes the lines i with i % THREADS == TID and builds every request once, in init(); request()
-- only hands out the next one. The file holds more requests than a run can send; if a thread runs
-- out anyway it starts over (the same MessageSid again: Twilio's retry, handled once) and counts
-- "repeated", which the bench reports as a failure of its sizing. done() prints one line
-- "WRK_JSON {...}" like rate.lua does, plus "repeated" and "loaded" (requests in the file).

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      local sid, signature, body = string.match(line, "^([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = signature,
        ["I-Twilio-Idempotency-Token"] = sid,
        ["User-Agent"] = "TwilioProxy/1.1",
      }
      table.insert(reqs, wrk.format("POST", nil, headers, body))
    end
    i = i + 1
  end
  loaded = #reqs
  sent = 0
  repeated = 0
  ok, c4xx, c5xx, cother = 0, 0, 0, 0
  sample = ""
end

function request()
  sent = sent + 1
  if sent > loaded then repeated = repeated + 1 end
  return reqs[(sent - 1) % loaded + 1]
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
  local t_ok, t_4, t_5, t_o, t_rep, t_loaded, samples = 0, 0, 0, 0, 0, 0, {}
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_4 = t_4 + t:get("c4xx")
    t_5 = t_5 + t:get("c5xx")
    t_o = t_o + t:get("cother")
    t_rep = t_rep + t:get("repeated")
    t_loaded = t_loaded + t:get("loaded")
    local s = t:get("sample")
    if s ~= "" then table.insert(samples, jstr(s)) end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"ok":%d,"status_4xx":%d,"status_5xx":%d,' ..
    '"status_other":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"error_samples":[%s],' ..
    '"repeated":%d,"loaded":%d}\n',
    summary.duration, summary.requests, summary.bytes, t_ok, t_4, t_5, t_o,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(samples, ","), t_rep, t_loaded))
end
