-- wrk script: GET one page (the URL given to wrk) over and over, with the headers given by -H
-- (the session cookie of a logged-in user). Only 200 with a non-empty body counts as ok:
-- a 302 to /login, a 404 or an empty 200 is a failure, so a lost session cannot pass for speed.
-- done() prints one line "WRK_JSON {...}" like rate.lua does.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
setup = common.setup

function init(args)
  common.reset()
end

function response(status, headers, body)
  common.count(status == 200 and body ~= nil and #body > 0, status,
               (headers["Location"] or "") .. " " .. string.sub(body or "", 1, 200))
end

function done(summary, latency, requests)
  common.done(summary, latency)
end
