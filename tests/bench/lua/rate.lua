-- wrk script: POST one rating (or the same body to the bare endpoint) per request.
--   wrk ... URL -s rate.lua -- TOKEN PREFIX START COUNT THREADS
-- Every request names a distinct pool record (PREFIX .. %08d, from START, COUNT in all, split
-- between the THREADS) and carries a unique Idempotency-Key. Levels follow the real mix
-- (99.5 % good; a bad one carries a reason and opens a ticket). done() prints one line
-- "WRK_JSON {...}" with the status counts of every thread and the latency percentiles.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

function init(args)
  token = args[1]
  prefix = args[2]
  local start = tonumber(args[3])
  local count = tonumber(args[4])
  local nthreads = tonumber(args[5])
  per = math.floor(count / nthreads)
  first = start + tid * per
  sent = 0
  common.reset()
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
  common.count(status >= 200 and status < 300, status, string.sub(body or "", 1, 300))
end

function done(summary, latency, requests)
  common.done(summary, latency)
end
