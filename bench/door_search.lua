-- GET /api/events/$DOOR_EVENT/attendees/?search=<term>: the name search at
-- the door, each request a term at random from $TERMS_FILE (one a line,
-- letters only).
local terms = {}
for line in io.lines(os.getenv("TERMS_FILE")) do terms[#terms + 1] = line end
local base = "/api/events/" .. os.getenv("DOOR_EVENT") .. "/attendees/?search="
local headers = { ["Authorization"] = "Bearer " .. os.getenv("ADMIN_TOKEN") }
local count = 0
setup = function(thread)
  count = count + 1
  thread:set("seed", count)
end
init = function()
  math.randomseed(os.time() * 100 + seed)
end
request = function()
  return wrk.format("GET", base .. terms[math.random(#terms)], headers)
end

-- $PACE_MS: each connection waits on average this long after an answer
-- before its next request (wrk's delay()): a steady rate of about
-- connections × 1000 / (PACE_MS + latency) per second, as door lanes send,
-- instead of as fast as the server answers (where latency is only the queue
-- of 16 connections on two cores). The pause is drawn at random
-- (exponential, mean PACE_MS), as independent lanes send: one fixed pause
-- keeps the 16 connections in step, 16 requests arriving together each
-- round, which no door does.
local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return math.floor(-pace * math.log(1 - math.random())) end
end
