-- Scenario: GET /fhir/<query>, cycling through the lines of BENCH_QUERIES (one search
-- path relative to the FHIR base per line, e.g. "Patient?identifier=..."), each wrk
-- thread from a different place. Only 200 counts as success.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup

local reqs = {}
local position = 0

function init(args)
  local path = os.getenv("BENCH_QUERIES") or error("BENCH_QUERIES is not set")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if line ~= "" then
      reqs[#reqs + 1] = wrk.format("GET", common.base .. "/" .. line,
        common.authorize({ ["Accept"] = "application/fhir+json" }))
    end
  end
  f:close()
  assert(#reqs > 0, "no queries in " .. path)
  position = ((id or 1) * 7919) % #reqs
end

function request()
  position = position % #reqs + 1
  return reqs[position]
end

function response(status)
  if status ~= 200 then
    common.other_status(status)
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, common.sum("other"), common.other_statuses())
end
