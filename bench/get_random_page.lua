-- GET a list at a random page (1..pages) so that each request is different.
local pages = tonumber(os.getenv("PAGES") or "50")
local base = os.getenv("LIST_PATH") or "/api/events/?page_size=20"
math.randomseed(os.time())
request = function()
  return wrk.format("GET", base .. "&page=" .. math.random(1, pages))
end
