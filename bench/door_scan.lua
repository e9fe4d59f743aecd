-- POST /api/checkins/ at one event's door: the long codes of $CODES_FILE
-- (one a line), each scanned once in turn; wrk thread k of n takes codes
-- k, k+n, k+2n… (its connections draw from that one sequence), so no two
-- requests carry the same code until the run has gone through all of them;
-- then the walk starts again and those scans answer 409 already_checked_in.
-- n is $WRK_THREADS (bench/run.sh runs wrk with 2 threads): it cannot be
-- counted in setup(), as wrk starts each thread right after its setup.
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do codes[#codes + 1] = line end
local event = os.getenv("DOOR_EVENT")
local headers = { ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. os.getenv("ADMIN_TOKEN") }
local stride = tonumber(os.getenv("WRK_THREADS") or "2")
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads)
end
local index = nil
request = function()
  if index == nil then
    index = offset
    -- Each thread its own pauses (PACE_MS below).
    math.randomseed(os.time() * 100 + offset)
  end
  local code = codes[(index - 1) % #codes + 1]
  index = index + stride
  return wrk.format("POST", "/api/checkins/", headers,
    '{"code": "' .. code .. '", "event": "' .. event .. '"}')
end
-- Globals: done() reads them from each thread.
admitted, already, other, other_sample = 0, 0, 0, ""
response = function(status, _, body)
  if status == 201 then
    admitted = admitted + 1
  elseif status == 409 and string.find(body, "already_checked_in", 1, true) then
    already = already + 1
  else
    other = other + 1
    if other_sample == "" then other_sample = status .. " " .. string.sub(body, 1, 200) end
  end
end
-- Called by bench/report.lua's done().
extra_report = function()
  local a, b, c, sample = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    a = a + t:get("admitted"); b = b + t:get("already"); c = c + t:get("other")
    if sample == "" then sample = t:get("other_sample") end
  end
  io.write(string.format("DOOR admitted=%d already=%d other=%d other_sample=%s\n",
    a, b, c, string.gsub(sample, "\n", " ")))
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
