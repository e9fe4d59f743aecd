-- POST /api/registrations/: each request a different user (tokens from
-- $TOKENS_FILE, split between wrk threads), all on $TICKET.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local ticket = os.getenv("TICKET")
local counter = 1
local threads = {}
setup = function(thread)
  thread:set("offset", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
local next_index = nil
request = function()
  if next_index == nil then next_index = offset end
  local token = tokens[next_index]
  -- bench/run.sh runs wrk with 2 threads: thread 1 takes tokens 1, 3, 5…,
  -- thread 2 takes 2, 4, 6… (each token once).
  next_index = next_index + 2
  if token == nil then
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "/api/registrations/",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
    '{"ticket_id": "' .. ticket .. '"}')
end
local created, refused = 0, 0
response = function(status)
  if status == 201 then created = created + 1 elseif status == 409 then refused = refused + 1 end
end
