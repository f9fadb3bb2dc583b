-- wrk script: POST one precomputed Twilio inbound SMS per request (or the same request to the bare endpoint).
--   wrk ... URL -s sms.lua -- FILE THREADS
-- FILE has one request a line, "MessageSid <TAB> X-Twilio-Signature <TAB> form body", written by
-- tests/bench/bench_sms.py (LuaJIT in wrk has no HMAC, so the signatures are computed there). Thread
-- TID takes the lines i with i % THREADS == TID and builds every request once, in init(); request()
-- only hands out the next one. The file holds more requests than a run can send; if a thread runs
-- out anyway it starts over (the same MessageSid again: Twilio's retry, handled once) and counts
-- "repeated", which the bench reports as a failure of its sizing. done() prints one line
-- "WRK_JSON {...}" like rate.lua does, plus "repeated" and "loaded" (requests in the file).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

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
  common.reset()
end

function request()
  sent = sent + 1
  if sent > loaded then repeated = repeated + 1 end
  return reqs[(sent - 1) % loaded + 1]
end

function response(status, headers, body)
  common.count(status >= 200 and status < 300, status, string.sub(body or "", 1, 300))
end

function done(summary, latency, requests)
  common.done(summary, latency, {"repeated", "loaded"})
end
