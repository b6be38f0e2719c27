-- Scenario: GET /fhir/Patient/<id>, ids drawn at random from the seeded ones.
-- BENCH_IDS names a file with one Patient id per line.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup

local reqs = {}

function init(args)
  local path = os.getenv("BENCH_IDS") or error("BENCH_IDS is not set")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if line ~= "" then
      reqs[#reqs + 1] = wrk.format("GET", common.base .. "/Patient/" .. line,
        common.authorize({ ["Accept"] = "application/fhir+json" }))
    end
  end
  f:close()
  assert(#reqs > 0, "no ids in " .. path)
  math.randomseed(os.time() + id * 7919)
end

function request()
  return reqs[math.random(#reqs)]
end

-- No response() here on purpose: it makes wrk hand every response to Lua, which costs
-- client CPU on the same cores as the server. non2xx = wrk's status errors (>= 400).
function done(summary, latency, requests)
  common.report(summary, latency, nil)
end
